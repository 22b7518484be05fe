/**
 * Issue 16 item 3, a real deployment's users on the NATS cluster, as processes: three nats-server nodes from the rig
 * (their pid files and the authorization file they include), `rc-sync-server start --broker <3 nodes> --nats-auth …
 * --nats-pid-file ×3 --public-broker-url <3 nodes> --enrol-listen …`, a technician's `rc-provision init` (the
 * comma-separated broker list split into sync.brokerUrl + sync.failoverUrls) and `check` (the broker takes the
 * device's bcrypt-hashed password on every node, the first list sync completes); the device's journal reaches the
 * server through the cluster and is acknowledged; `device revoke` rewrites the file, SIGHUPs the nodes, and every
 * node refuses the device.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../device/config/index.js';
import type { Config } from '../../device/config/schema.js';
import { processTap } from '../../device/runtime/process-tap.js';
import { Store } from '../../device/store/index.js';
import { SyncClient } from '../../device/sync/index.js';
import { natsAvailable, startNatsCluster, type RunningCluster } from '../support/rig/cluster.js';
import { checkNoHardware, connectAs, initBus, startEnrolServer, NO_HARDWARE_CHECK_PASSED, RULES, seedServer, TWO_CARDS_CSV } from '../support/provision-rig.js';
import { Procs } from '../support/rig/procs.js';
import { tokenOfPan } from '../support/pans.js';
import { logSink } from '../support/log.js';
import { waitFor } from '../support/wait.js';
import type { Scope } from '../../protocol/lists.js';

const have = natsAvailable();
if (!have && process.env.CI) throw new Error('nats-server is not installed: CI must run the cluster tests (apt-get install nats-server)');
if (!have) console.warn('cluster-nats-users: skipped, nats-server is not installed (apt-get install nats-server)');

const procs = new Procs({ ...process.env, RC_LOG_LEVEL: 'warn', RC_BROKER_PASSWORD: 'test-server-broker-secret' }, { timeoutMs: 90_000, graceMs: 5000 });
delete procs.env.RC_TOKEN_KEY;

/** Does the node take these credentials? (a fresh MQTT session, closed again) */
async function accepted(url: string, user: string, password: string): Promise<boolean> {
  try {
    const c = await connectAs(url, `rc-test-${Math.random().toString(36).slice(2)}`, user, password);
    await c.endAsync(true);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!have)('a NATS cluster whose users the server keeps (enrol, sync, journal, revoke)', () => {
  let base: string;
  let cluster: RunningCluster;
  let httpUrl = '';
  let enrolUrl = '';
  let deviceId = '';
  let cfg: Config;
  const dir = () => join(base, 'dev');

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-nats-users-'));
    const f = (n: string) => join(base, n);
    procs.env.RC_API_TOKEN_FILE = f('data/admin.token'); // the CLI runs below call the server as its admin
    // no users but the rig's probe: from here on the server writes the file the nodes include
    cluster = await startNatsCluster({ users: [], aclText: '' });
    ({ httpUrl, enrolUrl } = await startEnrolServer(
      procs,
      f('data'),
      [
        '--broker',
        cluster.url,
        '--nats-auth',
        cluster.authFile,
        ...cluster.pidFiles.flatMap((p) => ['--nats-pid-file', p]),
        '--public-broker-url',
        cluster.url,
      ],
      { stderr: 'inherit', timeoutMs: 60_000 },
    ));
    await seedServer(procs, base, RULES, { cards: TWO_CARDS_CSV }, ['--server', httpUrl]);
  }, 180_000);

  afterAll(async () => {
    await procs.stopAll();
    await cluster?.close();
    if (base) rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it("the server wrote its own users into the nodes' file: bcrypt hashes, each purpose with only its subjects", () => {
    const auth = readFileSync(cluster.authFile, 'utf8');
    expect(auth).toMatch(/\{ user: "rc-sync-server-publisher", password: "\$2b\$10\$[./A-Za-z0-9]{53}", permissions: \{ publish: \{ allow: \["rc\.v1\.lists"/);
    expect(auth).toMatch(/\{ user: "rc-sync-server-ingest", password: "\$2b\$10\$/);
    expect(auth).not.toContain('test-server-broker-secret');
    expect(auth).not.toContain('rc-rig-probe'); // the rig's file replaced
  });

  it('init splits the comma-separated broker list; check: every node takes the bcrypt password and the first sync completes', async () => {
    deviceId = await initBus(procs, { httpUrl, enrolUrl }, dir());
    cfg = loadConfigFile(join(dir(), 'device.json'));
    expect(cfg.sync).toMatchObject({ brokerUrl: cluster.urls[0], failoverUrls: cluster.urls.slice(1), username: deviceId });
    const auth = readFileSync(cluster.authFile, 'utf8');
    expect(auth).toContain(`{ user: "${deviceId}", password: "$2b$10$`);
    expect(auth).toContain(`publish: { allow: ["rc.v1.device.${deviceId}.journal"`);
    expect(auth).not.toContain(cfg.sync!.password!);
    // the nodes reload asynchronously after SIGHUP: each one takes the device's password
    for (const url of cluster.urls)
      await waitFor(() => accepted(url, deviceId, cfg.sync!.password!), { timeoutMs: 20_000, everyMs: 500, what: `${url} takes the device` });
    expect(await accepted(cluster.urls[1]!, deviceId, 'not-the-password')).toBe(false);
    const { run: c, report: rep } = await checkNoHardware(procs, dir(), 60);
    if (!rep.ok) console.log(c.stdout, c.stderr);
    expect(rep.items.map((i) => [i.id, i.ok])).toEqual(NO_HARDWARE_CHECK_PASSED);
    expect(rep.items.find((i) => i.id === 'sync')?.detail).toContain('transit v1 (2 entries)');
    expect(c.code).toBe(0);
  }, 240_000);

  it("the device's journal goes through the cluster and the server acknowledges it", async () => {
    expect(deviceId).not.toBe('');
    const sync = cfg.sync!;
    const store = Store.open(join(dir(), 'journal-test.sqlite'), { deviceId, synchronous: 'OFF' });
    const client = new SyncClient({
      store,
      deviceId,
      brokerUrl: sync.brokerUrl,
      ...(sync.failoverUrls ? { failoverUrls: sync.failoverUrls } : {}),
      username: sync.username!,
      password: sync.password!,
      scopes: sync.scopes as Scope[],
      serverPublicKey: sync.serverPublicKey!,
      stagingDir: join(dir(), 'staging-test'),
      log: logSink().log,
      reconnectMinMs: 200,
      reconnectMaxMs: 2000,
      ackTimeoutMs: 5000,
    });
    client.start();
    try {
      await waitFor(() => store.listVersion('transit') >= 1, { timeoutMs: 60_000, what: 'the transit list through the cluster' });
      const T0 = Date.parse('2026-11-24T09:00:00+03:00');
      for (let i = 0; i < 5; i++)
        processTap(
          store,
          {
            wallTime: T0 + i * 600_000,
            monotonicMs: 1_000_000 * (i + 1),
            bootId: 'test',
            direction: null,
            card: { token: tokenOfPan('2200700000000017', '2029-06'), expiry: null },
          },
          cfg,
        );
      client.notify();
      const last = store.lastSeq();
      expect(last).toBe(5);
      await waitFor(() => store.ackedSeq() === last, { timeoutMs: 60_000, what: 'the journal acknowledged by the server' });
    } finally {
      await client.stop();
      store.close();
    }
  }, 180_000);

  it('revoke removes the device from the file, the nodes reload, and every node refuses it', async () => {
    expect(deviceId).not.toBe('');
    const r = await procs.run('sync-server', ['device', 'revoke', deviceId, '--server', httpUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(cluster.authFile, 'utf8')).not.toContain(`"${deviceId}"`);
    for (const url of cluster.urls)
      await waitFor(async () => !(await accepted(url, deviceId, cfg.sync!.password!)), {
        timeoutMs: 20_000,
        everyMs: 500,
        what: `${url} refuses the revoked device`,
      });
    const { run: c, report: rep } = await checkNoHardware(procs, dir(), 5);
    expect(c.code).toBe(1);
    // every node refuses the password (waited for above); a node busy reloading may close the connection instead of a CONNACK 5
    const broker = rep.items.find((i) => i.id === 'broker');
    expect(broker?.ok).toBe(false);
    expect(['provision.broker-refused', 'sync.broker-unavailable']).toContain(broker?.code);
  }, 120_000);
});
