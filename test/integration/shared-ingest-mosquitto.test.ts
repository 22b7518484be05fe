import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../protocol/wire/topics.js';
import { aclFileText, mosquittoHash, passwordFileText, serverAclLines, serverBrokerUsers } from '../../sync-server/mosquitto-auth.js';
import { ErrorCode } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { openPolicy, startEmbeddedBroker } from '../../sync-server/broker.js';
import { ingestShare, ingestTopics } from '../../sync-server/start/broker.js';
import { checkOptions } from '../../sync-server/start/options.js';
import { expectRcError } from '../support/errors.js';
import { quietLogger } from '../support/log.js';
import { stopChild } from '../support/rig/procs.js';
import { waitFor } from '../support/wait.js';
import { freePort } from '../support/rig/broker.js';

/**
 * Shared ingest (issue 16 item 2, --shared-ingest): on a real Mosquitto 2.0 with the password and ACL files the
 * server writes, two instances' ingest clients (the same ingest user) subscribe `$share/rc-ingest-HASH/…` (from its password); every journal
 * upload and status goes to exactly one of them, every list request to both (the leader answers it). The embedded
 * broker (aedes) has none: the option is refused there.
 */
const DEVICE = 'dev-shared-1';
const PASSWORD = 'broker-password-of-the-installation';

describe('shared ingest on Mosquitto', () => {
  let dir: string;
  let port: number;
  let mosq: ChildProcess;
  const clients: MqttClient[] = [];
  /** What the two instances of the first test received (they stay in the group for the second). */
  const got: Record<string, string[]> = { a: [], b: [] };
  const ingestUser = serverBrokerUsers('rc-sync-server', PASSWORD).find((u) => u.purpose === 'ingest')!;
  /** The installation's subscriptions, as start/broker.ts makes them. */
  const shared = ingestTopics(true, ingestShare(ingestUser.password));
  const connectAs = async (username: string, password: string, clientId: string): Promise<MqttClient> => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, username, password, clientId, clean: true, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rc-shared-ingest-'));
    chmodSync(dir, 0o755); // Mosquitto drops to its own user before it reads the files
    const server = [{ user: ingestUser.user, mosqHash: mosquittoHash(ingestUser.password), acl: serverAclLines('ingest') }];
    const devices = [{ id: DEVICE, mosqHash: mosquittoHash('device-password'), scopes: ['transit'] }];
    writeFileSync(join(dir, 'passwd'), passwordFileText(server, devices), { mode: 0o644 });
    writeFileSync(join(dir, 'acl'), aclFileText(server, devices), { mode: 0o644 });
    port = await freePort();
    // the instances' listener: no use_username_as_clientid there (docs/postgres.md "Several instances"), each
    // instance's client keeps its own id under the one ingest user
    writeFileSync(
      join(dir, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${join(dir, 'passwd')}\nacl_file ${join(dir, 'acl')}\npersistence false\n`,
      { mode: 0o644 },
    );
    mosq = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    mosq.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(
      () =>
        new Promise<boolean>((res) => {
          const s = createServer().once('error', () => res(true));
          s.listen(port, '127.0.0.1', () => s.close(() => res(false)));
        }),
      { timeoutMs: 10_000, what: () => `mosquitto to listen: ${err}` },
    );
  });
  afterAll(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => undefined);
    await stopChild(mosq, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('each journal upload and status goes to exactly one instance, each request to both; the ingest user may subscribe $share', async () => {
    for (const name of ['a', 'b'] as const) {
      const c = await connectAs(ingestUser.user, ingestUser.password, `rc-sync-server-ingest-${name}`);
      const granted = await c.subscribeAsync(shared, { qos: 1 });
      // the ACL's `topic read rc/v1/device/+/journal` allows `$share/GROUP/rc/v1/device/+/journal`: granted QoS 1, not 0x80
      expect(granted.map((g) => [g.topic, g.qos])).toEqual(shared.map((t) => [t, 1]));
      expect(shared[0]).toMatch(/^\$share\/rc-ingest-[0-9a-f]{16}\/rc\/v1\/device\/\+\/journal$/);
      c.on('message', (topic, payload) => got[name]!.push(`${topic} ${payload.toString()}`));
    }
    const device = await connectAs(DEVICE, 'device-password', DEVICE);
    const N = 200;
    for (let i = 0; i < N; i++) await device.publishAsync(topics.journal(DEVICE), `upload ${i}`, { qos: 1 });
    for (let i = 0; i < 20; i++) await device.publishAsync(topics.status(DEVICE), `status ${i}`, { qos: 1 });
    await device.publishAsync(topics.request(DEVICE), 'request', { qos: 1 });
    const all = () => [...got.a!, ...got.b!];
    await waitFor(
      () =>
        all().filter((m) => !m.endsWith(' request')).length >= N + 20 &&
        got.a!.some((m) => m.endsWith(' request')) &&
        got.b!.some((m) => m.endsWith(' request')),
      {
        timeoutMs: 10_000,
        what: () => `${N} uploads, 20 status and a request each: a has ${got.a!.length}, b ${got.b!.length}`,
      },
    );
    await new Promise((r) => setTimeout(r, 300)); // anything delivered twice would come now
    const uploads = all().filter((m) => m.includes(' upload '));
    expect(uploads.length).toBe(N);
    expect(new Set(uploads).size).toBe(N);
    expect(all().filter((m) => m.includes(' status ')).length).toBe(20);
    // shared among both (Mosquitto's round robin), not all to one
    expect(got.a!.filter((m) => m.includes(' upload ')).length).toBeGreaterThan(N / 4);
    expect(got.b!.filter((m) => m.includes(' upload ')).length).toBeGreaterThan(N / 4);
    expect(got.a!.filter((m) => m.endsWith(' request'))).toEqual([`${topics.request(DEVICE)} request`]);
    expect(got.b!.filter((m) => m.endsWith(' request'))).toEqual([`${topics.request(DEVICE)} request`]);
  });

  it("a device cannot take uploads from the instances: it does not know the group's name; in the group it would get none but make Mosquitto drop its share", async () => {
    const ingest = await connectAs(ingestUser.user, ingestUser.password, 'rc-sync-server-ingest-c');
    await ingest.subscribeAsync(shared, { qos: 1 });
    const seen: string[] = [];
    ingest.on('message', (t, p) => seen.push(`${t} ${p.toString()}`));
    const thief = await connectAs(DEVICE, 'device-password', `${DEVICE}-thief`);
    const stolen: string[] = [];
    thief.on('message', (t, p) => stolen.push(`${t} ${p.toString()}`));
    const device = await connectAs(DEVICE, 'device-password', `${DEVICE}-3`);
    const send = async (tag: string) => {
      for (let i = 0; i < 100; i++) await device.publishAsync(topics.journal(DEVICE), `${tag} ${i}`, { qos: 1 });
    };
    const instances = (tag: string) => [...seen, ...got.a!, ...got.b!].filter((m) => m.includes(` ${tag} `));

    // the names a device can know or guess (the documented one, one from another password): other groups, nothing lost
    for (const guess of [ingestTopics(true)[0]!, ingestTopics(true, ingestShare('device-password'))[0]!]) {
      const granted = await thief.subscribeAsync(guess, { qos: 1 });
      expect(granted[0]!.qos).toBe(1);
    }
    await send('guessed');
    await waitFor(() => instances('guessed').length >= 100, { timeoutMs: 10_000, what: () => `uploads to the instances (${instances('guessed').length})` });
    await new Promise((r) => setTimeout(r, 300));
    expect(instances('guessed').length).toBe(100);
    expect(new Set(instances('guessed')).size).toBe(100);

    // why the name is a secret: Mosquitto 2.0 grants a device the installation's group too (the read ACL is checked at
    // delivery), delivers it nothing, and drops the uploads its round robin hands that member (the devices resend them)
    const granted = await thief.subscribeAsync(shared[0]!, { qos: 1 });
    console.log(`shared-ingest: a device's subscription to the installation's group is granted QoS ${granted[0]!.qos}`);
    await send('again');
    await waitFor(() => instances('again').length >= 50, { timeoutMs: 10_000, what: () => `uploads to the instances (${instances('again').length})` });
    await new Promise((r) => setTimeout(r, 500));
    const delivered = instances('again');
    console.log(`shared-ingest: with a device in the group of 3 instances, the instances got ${delivered.length} of 100 uploads, the device ${stolen.length}`);
    expect(stolen).toEqual([]); // never a journal to a device: the acl_file's read check holds
    expect(new Set(delivered).size).toBe(delivered.length); // none twice
    expect(delivered.length).toBeLessThan(100);
  });
});

describe('the embedded broker (aedes) has no shared subscriptions', () => {
  it('a $share subscription there receives no upload, so --shared-ingest is refused without --broker and with NATS', async () => {
    const broker = await startEmbeddedBroker({ port: 0, policy: openPolicy('srv', 'pw'), log: quietLogger() });
    try {
      const ingest = await mqtt.connectAsync(broker.url, { protocolVersion: 4, username: 'srv', password: 'pw', reconnectPeriod: 0 });
      const plain = await mqtt.connectAsync(broker.url, { protocolVersion: 4, username: 'srv', password: 'pw', reconnectPeriod: 0 });
      await ingest.subscribeAsync(ingestTopics(true)[0]!, { qos: 1 });
      await plain.subscribeAsync(ingestTopics(false)[0]!, { qos: 1 });
      const shared: string[] = [];
      const unshared: string[] = [];
      ingest.on('message', (t) => shared.push(t));
      plain.on('message', (t) => unshared.push(t));
      await plain.publishAsync(topics.journal('dev-aedes'), 'upload', { qos: 1 });
      await waitFor(() => unshared.length === 1, { timeoutMs: 5000, what: 'the unshared subscription to get the upload' });
      await new Promise((r) => setTimeout(r, 300));
      expect(shared).toEqual([]); // aedes 1.2 takes `$share/…` as a literal filter: nothing matches it
      await ingest.endAsync(true);
      await plain.endAsync(true);
    } finally {
      await broker.close();
    }
    const base = { dataDir: '/nonexistent', httpPort: 0, tokenKey: DEV_TOKEN_KEY, log: quietLogger(), sharedIngest: true };
    expect(expectRcError(() => checkOptions(base), ErrorCode.ServerBadRequest).message).toContain('--shared-ingest needs an external broker');
    expect(
      expectRcError(
        () => checkOptions({ ...base, brokerUrl: 'mqtt://127.0.0.1:1883', nats: { authFile: '/x', pidFiles: [] } as never }),
        ErrorCode.ServerBadRequest,
      ).message,
    ).toContain('NATS');
    expect(checkOptions({ ...base, brokerUrl: 'mqtt://127.0.0.1:1883' })).toEqual({});
  });
});
