/**
 * Mosquitto as documented in deploy/mosquitto.conf (paths and ports moved into a temp dir), with the
 * sync-server writing its password and ACL files: devices connect over mqtts with the CA they got at
 * enrolment, and `use_username_as_clientid` closes session take-over — a device's credentials with
 * another device's client id no longer push that device off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { topics } from '../../protocol/wire/topics.js';
import { createMqttTransport } from '../../device/sync/mqtt-transport.js';
import { loadDevice } from '../../provisioning/device-dir.js';
import { initDevice } from '../../provisioning/ops.js';
import { startServer, type RunningServer } from '../../sync-server/server.js';
import { loadTls, tlsInit, type TlsInitResult } from '../../sync-server/tls.js';
import { RULES, closedWithin } from '../support/provision-rig.js';
import { freePort, waitPort } from '../support/rig/broker.js';
import { dbOption, testLogger } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

const ROOT = join(import.meta.dirname, '..', '..');

interface Dev {
  id: string;
  username: string;
  password: string;
  ca: string;
  brokerUrl: string;
}

/** mqtts as the device connects (pinned CA, name checked). */
function connectTls(d: Dev, clientId = d.id, ca = d.ca): Promise<MqttClient> {
  const u = new URL(d.brokerUrl);
  return mqtt.connectAsync({
    protocol: 'mqtts',
    host: u.hostname,
    port: Number(u.port),
    ca,
    rejectUnauthorized: true,
    protocolVersion: 4,
    clientId,
    username: d.username,
    password: d.password,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
}

describe('Mosquitto as documented: mqtts for devices with the pinned CA, no client-id take-over', () => {
  let base: string;
  let pki: TlsInitResult;
  let mosq: ChildProcess;
  let server: RunningServer;
  const open: MqttClient[] = [];
  let a: Dev;
  let b: Dev;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-mosq-tls-'));
    pki = tlsInit(join(base, 'tls'), ['127.0.0.1']);
    const f = (n: string) => join(base, n);
    writeFileSync(f('passwd'), '', { mode: 0o640 });
    writeFileSync(f('acl'), '', { mode: 0o640 });
    const [plain, secure] = [await freePort(), await freePort()];
    const conf = readFileSync(join(ROOT, 'deploy', 'mosquitto.conf'), 'utf8')
      .replaceAll('/etc/mosquitto/rc/', `${base}/`)
      .replaceAll('/run/mosquitto/mosquitto.pid', f('mosquitto.pid'))
      .replaceAll('/etc/resident-card/tls', join(base, 'tls'))
      .replace('listener 1883 127.0.0.1', `listener ${plain} 127.0.0.1`)
      .replace('listener 8883', `listener ${secure} 127.0.0.1`);
    writeFileSync(f('mosquitto.conf'), conf + 'persistence false\n' + (process.getuid?.() === 0 ? 'user root\n' : ''));
    mosq = spawn('mosquitto', ['-c', f('mosquitto.conf')], { stdio: 'ignore' });
    process.once('exit', () => mosq.kill('SIGKILL'));
    await waitPort(plain);
    await waitPort(secure);
    server = await startServer({
      dataDir: f('data'),
      ...dbOption(f('data')),
      httpPort: 0,
      tokenKey: DEV_TOKEN_KEY,
      log: testLogger(),
      brokerUrl: `mqtt://127.0.0.1:${plain}`,
      brokerUsername: 'rc-sync-server',
      brokerPassword: 'mosq-tls-server-secret',
      mosquitto: { passwordFile: f('passwd'), aclFile: f('acl'), pidFile: f('mosquitto.pid') },
      publicBrokerUrl: `mqtts://127.0.0.1:${secure}`,
      brokerCa: loadTls({ cert: pki.cert, key: pki.key, ca: pki.caCert }).ca,
      deviceAuth: {},
    });
    await server.api.setConfig('rules', RULES);
    const enrol = async (school: string): Promise<Dev> => {
      const dir = f(`dev-${school}`);
      const r = await initDevice({
        server: server.httpUrl,
        token: server.provisioning.createToken({ kind: 'turnstile', school, ttlSec: 600 }).token,
        kind: 'turnstile',
        school,
        direction: 'entry',
        dir,
      });
      const s = loadDevice(dir).config.sync!;
      return { id: r.deviceId, username: s.username!, password: s.password!, ca: s.ca!, brokerUrl: s.brokerUrl };
    };
    a = await enrol('7');
    b = await enrol('8');
    // Mosquitto reloads the password file on SIGHUP: wait until the last device may connect
    await waitFor(
      () =>
        connectTls(b).then((c) => {
          c.end(true);
          return true;
        }),
      { timeoutMs: 15_000, what: 'Mosquitto to accept the enrolled devices over mqtts', everyMs: 100 },
    );
  }, 120_000);

  afterAll(async () => {
    for (const c of open) c.end(true);
    await server?.close().catch(() => undefined);
    if (mosq && mosq.exitCode === null) {
      const exited = new Promise<void>((r) => mosq.once('exit', () => r()));
      mosq.kill('SIGKILL');
      await exited;
    }
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('enrolment hands out the mqtts URL and the CA; the device receives its rules over TLS', async () => {
    expect(a.brokerUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    expect(a.ca).toBe(readFileSync(pki.caCert, 'utf8'));
    const c = await connectTls(a);
    open.push(c);
    const got = new Promise<string>((res) => c.on('message', (t) => res(t)));
    await c.subscribeAsync('rc/v1/config/+', { qos: 1 });
    expect(await got).toBe('rc/v1/config/rules');
  });

  it('a device that dials Mosquitto with another CA pinned is refused: sync.tls-untrusted', async () => {
    const other = tlsInit(join(base, 'other'), ['127.0.0.1']);
    const err = await new Promise<Error>((resolve) => {
      const t = createMqttTransport(
        {
          brokerUrl: a.brokerUrl,
          clientId: a.id,
          username: a.username,
          password: a.password,
          tls: { ca: readFileSync(other.caCert, 'utf8') },
          will: { topic: topics.status(a.id), payload: Buffer.from('{}') },
        },
        { connect: () => resolve(new Error('connected')), message: () => undefined, close: () => undefined, error: (e) => resolve(e) },
      );
      open.push({ end: () => void t.close() } as unknown as MqttClient);
    });
    expect(err).toBeInstanceOf(RcError);
    expect((err as RcError).code).toBe(ErrorCode.SyncTlsUntrusted);
  });

  it("a device's credentials with another device's or the server's client id do not push them off", async () => {
    const victim = await connectTls(b);
    open.push(victim);
    const kicked = closedWithin(victim, 2000);
    const thief = await connectTls(a, b.id); // accepted, but under its own name (use_username_as_clientid)
    open.push(thief);
    expect(await kicked).toBe(false);
    expect(victim.connected).toBe(true);
    const thief2 = await connectTls(a, 'rc-sync-server');
    open.push(thief2);
    // the server's own session survives: a config set now still reaches the victim device
    const next = new Promise<void>((res) => victim.on('message', (t, p) => t === 'rc/v1/config/rules' && p.length > 0 && res()));
    await victim.subscribeAsync('rc/v1/config/+', { qos: 1 });
    await next; // retained copy
    const fresh = new Promise<void>((res) => victim.on('message', (_t, _p, packet) => !packet.retain && res()));
    await server.api.setConfig('rules', { ...(RULES as object) });
    await fresh;
    // both thieves were the same client (a's own id): the second took over the first, and nobody else
    expect(thief2.connected).toBe(true);
    expect(thief.connected).toBe(false);
    expect(victim.connected).toBe(true);
  });
});
