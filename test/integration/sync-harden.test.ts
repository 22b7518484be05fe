import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../device/store/index.js';
import { SyncClient, type SyncClientOptions } from '../../device/sync/index.js';
import { ErrorCode } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { sealConfig, sealJournalAck } from '../../protocol/wire/chunking.js';
import { generateSigningKey, loadPrivateKey, loadPublicKey } from '../../protocol/wire/envelope.js';
import { topics } from '../../protocol/wire/topics.js';
import { verifyJournalAck } from '../../protocol/wire/verify.js';
import { startServer, type RunningServer, type ServerOptions } from '../../sync-server/server.js';
import { tokenOf } from '../support/registry-csv.js';
import { dbOption, testLogger } from '../support/sync-harness.js';
import { onPostgres } from '../support/test-db.js';
import { waitFor } from '../support/wait.js';
import { freePort, waitPort } from '../support/rig/broker.js';

/**
 * Hardening of the journal path (issue 13): acks leave the server only once the entries are on disk, a device
 * whose acknowledged entries the server lost sends them again, forged acks and older configs are refused.
 */
const CLI = join(import.meta.dirname, '..', '..', 'sync-server', 'cli.ts');
const T0 = Date.parse('2026-11-24T09:00:00+03:00');
const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function entry(seq: number) {
  const time = new Date(T0 + seq * 1000).toISOString();
  return { seq, time, token: tokenOf(seq), kind: 'bus', result: 'allow', reason: 'ok', fareKopecks: 0, benefit: null, lists: {} };
}

/** A device: a real store and the real sync client. */
function openDeviceWith(id: string, server: RunningServer, dir: string, extra: Partial<SyncClientOptions> = {}) {
  const store = Store.open(join(dir, `${id}.sqlite`), { deviceId: id, synchronous: 'OFF' });
  const client = new SyncClient({
    store,
    deviceId: id,
    brokerUrl: server.mqttUrl,
    scopes: ['transit'],
    serverPublicKey: server.publicKeyPem,
    stagingDir: join(dir, `${id}-staging`),
    log: testLogger(),
    reconnectMinMs: 200,
    reconnectMaxMs: 1000,
    ackTimeoutMs: 3000,
    batchSize: 7,
    ...extra,
  });
  const refused: { code: string }[] = [];
  client.on('refused', (r: { code: string }) => refused.push(r));
  const append = (n: number) => {
    for (let i = 0; i < n; i++) {
      const seq = store.lastSeq() + 1;
      store.appendEvent({ wallTime: T0 + seq * 1000, token: tokenOf(seq), kind: 'turnstile', reason: 'not-passed' });
    }
    client.notify();
  };
  cleanup.push(() => store.close());
  cleanup.push(() => client.stop());
  client.start();
  return { store, client, refused, append };
}

function serverOptions(dataDir: string): ServerOptions {
  return {
    dataDir,
    mqttPort: 0,
    brokerPassword: 'test-server-secret',
    httpPort: 0,
    tokenKey: DEV_TOKEN_KEY,
    log: testLogger(),
    chargingIntervalMs: 60_000,
    ...dbOption(dataDir),
  };
}

function journalOnServer(server: RunningServer, device: string) {
  return server.db.prepare('SELECT count(*) AS n, count(DISTINCT seq) AS "distinct", coalesce(max(seq), 0) AS max FROM journal WHERE device = ?').get(device);
}

// SQLite's own: the fsync of registry.sqlite-wal seen with strace (on PostgreSQL the ack follows the COMMIT: docs/postgres.md)
describe.skipIf(onPostgres)('durable journal acks (strace of the real rc-sync-server)', () => {
  let child: ChildProcess | null = null;
  let dir = '';
  /** Stops the traced server: SIGTERM to the node process itself (strace does not pass it on), then strace ends. */
  async function stopTraced(): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    let tracee: number[] = [];
    try {
      tracee = readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      /* strace already gone */
    }
    for (const pid of tracee) process.kill(pid, 'SIGTERM');
    const t = setTimeout(() => {
      for (const pid of tracee) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      c.kill('SIGKILL');
    }, 5000);
    await exited;
    clearTimeout(t);
  }
  afterAll(async () => {
    await stopTraced();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('no journal-ack is written to the broker socket before the registry WAL holding the batch is fsynced', async () => {
    const probe = spawnSync('strace', ['-f', '-e', 'trace=fsync', 'true'], { encoding: 'utf8' });
    expect(probe.status, `strace cannot trace here: ${probe.error?.message ?? probe.stderr}`).toBe(0);
    dir = mkdtempSync(join(tmpdir(), 'rc-durable-'));
    const mqttPort = await freePort();
    const httpPort = await freePort();
    const trace = join(dir, 'trace.txt');
    // -y: file descriptors with their paths; -s: enough of each written buffer to see the topic
    const ports = ['--mqtt-port', String(mqttPort), '--http-port', String(httpPort)];
    const server = [process.execPath, '--import', 'tsx', CLI, 'start', '--dev-token-key', '--data', join(dir, 'data'), ...ports];
    const traced = 'trace=fsync,fdatasync,pwrite64,write,writev,sendto,sendmsg';
    child = spawn('strace', ['-f', '-qq', '-y', '-s', '300', '-o', trace, '-e', traced, '--', ...server, '--allow-anonymous-devices'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RC_LOG_LEVEL: 'warn' },
    });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    child.once('exit', (code) => code && console.error(`traced server exited ${code}: ${stderr}`));
    await waitPort(httpPort, 60_000);
    const pub = loadPublicKey(readFileSync(join(dir, 'data', 'signing-key.pub.pem'), 'utf8'));
    const dev = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { protocolVersion: 4, clientId: 'bus-durable' });
    try {
      const acked = new Promise<Buffer>((resolve) => dev.on('message', (_t, p) => resolve(p)));
      await dev.subscribeAsync(topics.journalAck('bus-durable'), { qos: 1 });
      const batch = { device: 'bus-durable', entries: Array.from({ length: 20 }, (_, i) => entry(i + 1)) };
      await dev.publishAsync(topics.journal('bus-durable'), Buffer.from(JSON.stringify(batch)), { qos: 1 });
      const ack = await acked;
      expect(verifyJournalAck(ack, pub, 'bus-durable', 20)).toEqual({ device: 'bus-durable', upTo: 20 });
    } finally {
      await dev.endAsync(true);
    }
    await stopTraced();

    const lines = readFileSync(trace, 'utf8').split('\n');
    const ackTopic = topics.journalAck('bus-durable');
    const isAckWrite = (l: string) => /\b(write|writev|sendto|sendmsg)\(\d+<(TCP|socket)/.test(l) && l.includes(ackTopic);
    const isWalWrite = (l: string) => /\bpwrite64\(\d+<[^>]*registry\.sqlite-wal>/.test(l);
    const isRegistrySync = (l: string) => /\b(fsync|fdatasync)\(\d+<[^>]*registry\.sqlite(-wal)?>/.test(l) && !l.includes('unfinished');
    const a = lines.findIndex(isAckWrite);
    expect(a, 'the ack was written to a socket').toBeGreaterThan(0);
    // the last WAL write before the ack (the batch's commit) is followed by an fsync of the registry before the ack
    const w = lines.slice(0, a).findLastIndex(isWalWrite);
    expect(w, 'the batch went to the registry WAL before the ack').toBeGreaterThanOrEqual(0);
    const synced = lines.slice(w + 1, a).filter(isRegistrySync);
    expect(synced.length, `no fsync of the registry between its last WAL write and the ack:\n${lines.slice(w, a + 1).join('\n')}`).toBeGreaterThan(0);
  }, 120_000);
});

describe('journal path over a real sync-server (in process)', () => {
  // the older copy is SQLite's file (VACUUM INTO, copied over registry.sqlite); a PostgreSQL restore is pg_restore's
  it.skipIf(onPostgres)(
    'a device whose acknowledged entries the server lost (registry restored from an older copy) sends them again; each is stored once',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rc-restore-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const opts = serverOptions(join(dir, 'data'));
      let server = await startServer(opts);
      cleanup.push(() => server.close().catch(() => undefined));
      const dev = openDeviceWith('bus-restore', server, dir);
      dev.append(10);
      await waitFor(() => dev.store.ackedSeq() === 10, { timeoutMs: 10_000, what: 'first 10 acknowledged' });
      // the backup: a consistent copy of the registry holding entries 1..10
      const older = join(dir, 'registry-older.sqlite');
      server.db.exec(`VACUUM INTO '${older}'`);
      dev.append(20);
      await waitFor(() => dev.store.ackedSeq() === 30, { timeoutMs: 10_000, what: 'all 30 acknowledged' });

      // power cut and restore: the server comes back with the older registry on the same port
      await server.close();
      const registry = join(opts.dataDir, 'registry.sqlite');
      for (const f of ['-wal', '-shm']) rmSync(registry + f, { force: true });
      copyFileSync(older, registry);
      const rewound = new Promise((r) => dev.client.once('rewound', r));
      server = await startServer({ ...opts, mqttPort: Number(new URL(server.mqttUrl).port) });
      expect(journalOnServer(server, 'bus-restore')).toEqual({ n: 10, distinct: 10, max: 10 });

      // on reconnection the device sends its last acknowledged entry again; the server's ack (10) is below the device's (30):
      // 11..30 go up again, with no new tap needed
      expect(await rewound).toEqual({ upTo: 10, from: 30 });
      await waitFor(() => dev.store.ackedSeq() === 30, { timeoutMs: 15_000, what: 'all 30 acknowledged again after the restore' });
      expect(journalOnServer(server, 'bus-restore')).toEqual({ n: 30, distinct: 30, max: 30 });
      // and the journal carries on
      dev.append(5);
      await waitFor(() => dev.store.ackedSeq() === 35, { timeoutMs: 10_000, what: 'new taps acknowledged' });
      expect(journalOnServer(server, 'bus-restore')).toEqual({ n: 35, distinct: 35, max: 35 });
      expect(dev.store.journalBacklog()).toBe(0);
      expect(dev.refused).toEqual([]);
    },
    60_000,
  );

  it('forged, unsigned and out-of-range journal acks and a replayed older config are refused; the backlog and config are unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-forged-ack-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const opts = serverOptions(join(dir, 'data'));
    const server = await startServer(opts);
    cleanup.push(() => server.close());
    const key = loadPrivateKey(readFileSync(join(opts.dataDir, 'signing-key.pem'), 'utf8'));
    // windowSize 0: this device uploads nothing, so only the messages below could acknowledge its entries
    const dev = openDeviceWith('bus-forged', server, dir, { windowSize: 0 });
    dev.append(50);
    const configs: number[] = [];
    dev.client.on('config', (c: { name: string; version: number }) => configs.push(c.version));
    await waitFor(() => dev.client.connected, { timeoutMs: 10_000, what: 'device connected' });
    await new Promise((r) => setTimeout(r, 300)); // subscriptions in place
    const creds = { username: 'rc-sync-server', password: 'test-server-secret' }; // the server's own broker credentials
    const attacker = await mqtt.connectAsync(server.mqttUrl, { protocolVersion: 4, clientId: 'attacker', ...creds });
    cleanup.push(() => attacker.endAsync(true));
    const expectRefused = async (code: string, payload: Buffer, topic = topics.journalAck('bus-forged')) => {
      const n = dev.refused.length;
      await attacker.publishAsync(topic, payload, { qos: 1, retain: true });
      await waitFor(() => dev.refused.slice(n).some((r) => r.code === code), { timeoutMs: 5000, what: `refusal ${code}` });
      expect(dev.store.ackedSeq()).toBe(0);
      expect(dev.store.journalBacklog()).toBe(50);
    };
    await expectRefused(ErrorCode.SyncBadSignature, Buffer.from(JSON.stringify({ device: 'bus-forged', upTo: 50 })));
    await expectRefused(ErrorCode.SyncBadSignature, sealJournalAck('bus-forged', 50, new Date(), generateSigningKey().privateKey));
    await expectRefused(ErrorCode.SyncDeviceMismatch, sealJournalAck('bus-other', 50, new Date(), key));
    await expectRefused(ErrorCode.JournalAckInvalid, sealJournalAck('bus-forged', 51, new Date(), key));
    // the genuine ack is still believed
    await attacker.publishAsync(topics.journalAck('bus-forged'), sealJournalAck('bus-forged', 20, new Date(), key), { qos: 1, retain: true });
    await waitFor(() => dev.store.ackedSeq() === 20, { timeoutMs: 5000, what: 'a genuine ack applied' });

    // configs: version 2 applied, then version 1 (genuinely signed) replayed
    await attacker.publishAsync(topics.config('rules-bus'), sealConfig('rules-bus', 2, { v: 2 }, new Date(), 3_600_000, key), { qos: 1, retain: true });
    await waitFor(() => configs.includes(2), { timeoutMs: 5000, what: 'config v2 applied' });
    const n = dev.refused.length;
    await attacker.publishAsync(topics.config('rules-bus'), sealConfig('rules-bus', 1, { v: 1 }, new Date(), 3_600_000, key), { qos: 1, retain: true });
    await waitFor(() => dev.refused.slice(n).some((r) => r.code === ErrorCode.SyncRollback), { timeoutMs: 5000, what: 'config rollback refused' });
    expect(configs).toEqual([2]);
  }, 60_000);
});
