/**
 * Issue 16's failover test, end to end, real parts only: one private PostgreSQL 15, one Mosquitto on the password and
 * ACL files the servers write, two `rc-sync-server start --database postgres://… --shared-ingest` child processes
 * (the same development token key, the same signing key: docs/postgres.md "Several instances"), and a device
 * (enrolled through the operator API, its real store and sync client in this process) that journals taps all the
 * time. kill -9 of the leader while the device uploads; then: the other instance leads within 10 s, a stop-list
 * change made through it right after the kill and an import once it leads reach the device within 10 s each, every
 * entry the device saw acknowledged is in the registry once, and what was unacknowledged at the kill is acknowledged.
 */
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenCreated } from '../../protocol/enrol.js';
import { loadDevice } from '../../provisioning/device-dir.js';
import { initDevice } from '../../provisioning/ops.js';
import { PgDb } from '../../sync-server/db/pg.js';
import { operatorFetch, type OperatorTarget } from '../support/operator-api.js';
import { logSink } from '../support/log.js';
import { syntheticPan } from '../support/pans.js';
import { RULES } from '../support/provision-rig.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { freePort, spawnFileMosquitto, waitPort } from '../support/rig/broker.js';
import { requirePostgres, startPostgres, type PgServer } from '../support/rig/postgres.js';
import { Procs } from '../support/rig/procs.js';
import { busConfig, openDevice, tap, type Device } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

const run = requirePostgres('failover-e2e.test.ts');

/** Same on every instance: the server users' Mosquitto passwords derive from it (docs/postgres.md "Deploying"). */
const BROKER_PASSWORD = 'failover-e2e-broker-password';
/** The bound for both: another instance leads, and a list change reaches the device. */
const WITHIN_MS = 10_000;
/** Generous bounds for what is not measured (process start, catch-up): the machine may be loaded 5–10. */
const SLOW_MS = 60_000;

interface Instance extends OperatorTarget {
  name: string;
  child: ChildProcess;
  /** Wall-clock times (the log's own `time`) of the instance's "leader: …" lines. */
  ledAt: number[];
  /** The last lines of its log, for failure messages. */
  tail(): string;
}

describe.skipIf(!run)('failover end to end: two sync-servers on PostgreSQL and Mosquitto, a device uploading, kill -9 of the leader', () => {
  let base: string;
  let pg: PgServer;
  let database: string;
  let brokerUrl: string;
  let registry: PgDb;
  const procs = new Procs({ ...process.env, RC_LOG_LEVEL: 'info', RC_BROKER_PASSWORD: BROKER_PASSWORD }, { graceMs: 5000 });
  delete procs.env.RC_TOKEN_KEY;
  delete procs.env.RC_TEST_DB; // this file's servers name their database themselves
  const f = (n: string) => join(base, n);

  /** `rc-sync-server start` as docs/postgres.md "Deploying" runs each instance, on its own data dir. */
  const startInstance = async (name: string): Promise<Instance> => {
    const dataDir = f(`data-${name}`);
    const args = ['start', '--dev-token-key', '--data', dataDir, '--database', database, '--http-port', '0'];
    args.push(
      '--broker',
      brokerUrl,
      '--shared-ingest',
      '--mosquitto-passwd',
      f('passwd'),
      '--mosquitto-acl',
      f('acl'),
      '--mosquitto-pid-file',
      f('mosquitto.pid'),
    );
    const ledAt: number[] = [];
    const lines: string[] = [];
    const onStderr = (l: string) => {
      lines.push(l);
      if (lines.length > 40) lines.shift();
      try {
        const rec = JSON.parse(l) as { msg?: string; time?: number };
        if (rec.msg?.startsWith('leader:')) ledAt.push(rec.time ?? Date.now());
      } catch {
        // not a log line
      }
    };
    const { child, httpUrl } = await procs.startServer(args, { onStderr, timeoutMs: SLOW_MS });
    return { name, child, httpUrl, dataDir, ledAt, tail: () => lines.join('\n') };
  };

  const api = async (at: OperatorTarget, method: string, path: string, body?: string, type = 'application/json'): Promise<Record<string, unknown>> => {
    const r = await operatorFetch(at, path, { method, ...(body !== undefined ? { body, headers: { 'content-type': type } } : {}) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path} on ${at.httpUrl}: HTTP ${r.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };

  /** rc_taps_ingested_total of one instance (its /metrics): how many journal entries it stored. */
  const ingested = async (at: OperatorTarget): Promise<number> => {
    const r = await operatorFetch(at, '/metrics');
    const m = /^rc_taps_ingested_total (\d+)/m.exec(await r.text());
    return Number(m?.[1] ?? NaN);
  };

  /**
   * Imports 20 cards from `from` through `at` (retried while it answers server.not-leader: a leader whose loop stalled
   * past its lease says so until its next check, and a client retries); the ms until the device holds the new version.
   */
  const importReaches = async (at: Instance, from: number): Promise<number> => {
    const t0 = Date.now();
    const imported = await waitFor(
      () =>
        api(at, 'POST', '/v1/import/cards?skipInvalid=false', cardsCsv(from, 20), 'text/csv').catch((e: Error) => {
          if (e.message.includes('server.not-leader')) return null;
          throw e;
        }) as Promise<{ versions: { transit: number } } | null>,
      { timeoutMs: 3 * WITHIN_MS, everyMs: 200, what: `instance ${at.name} to take an import` },
    );
    await waitFor(() => dev.store.listVersion('transit') >= imported.versions.transit, {
      timeoutMs: 3 * WITHIN_MS,
      what: () => `the import through ${at.name} to reach the device (transit ${dev.store.listVersion('transit')}, want ${imported.versions.transit})`,
    });
    return Date.now() - t0;
  };

  let a: Instance;
  let b: Instance;
  let dev: Device;
  /** The device's log, with the lower acks it doubted (two instances' acks out of order: device/sync/client.ts onAck). */
  const devLog = logSink({ level: 'debug' });
  let deviceId: string;
  let tapper: NodeJS.Timeout | null = null;
  const stopTapping = () => {
    if (tapper) clearInterval(tapper);
    tapper = null;
  };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-failover-e2e-'));
    pg = await startPostgres();
    database = pg.createDatabase('failover');
    registry = new PgDb({ url: database });
    // Mosquitto as docs/provisioning.md sets it up: the servers write the files (empty until then) and SIGHUP it
    const port = await freePort();
    brokerUrl = `mqtt://127.0.0.1:${port}`;
    // the instances' listener, no use_username_as_clientid (both instances use the same two server users)
    procs.track(spawnFileMosquitto(base, port, ['max_queued_messages 100000']));
    await waitPort(port);

    // the first instance makes the schema and the signing key, and leads; the second gets a copy of the key
    a = await startInstance('a');
    await waitFor(() => a.ledAt.length > 0, { timeoutMs: SLOW_MS, what: () => `instance a to lead:\n${a.tail()}` });
    mkdirSync(f('data-b'), { mode: 0o700 });
    copyFileSync(join(a.dataDir, 'signing-key.pem'), join(f('data-b'), 'signing-key.pem'));
    b = await startInstance('b');

    await api(a, 'POST', '/v1/config', JSON.stringify({ name: 'rules', rules: RULES }));
    await api(a, 'POST', '/v1/import/cards?skipInvalid=false', cardsCsv(0, 200), 'text/csv');
    // a bus enrolled through the first instance, as a technician's rc-provision init does it
    const created = TokenCreated.parse(await api(a, 'POST', '/v1/enrol-tokens', JSON.stringify({ kind: 'bus', route: '7', ttlSec: 600 })));
    const devDir = f('device');
    deviceId = (await initDevice({ server: a.httpUrl, token: created.token, kind: 'bus', route: '7', vehicle: 'V1', dir: devDir })).deviceId;
    const d = loadDevice(devDir);
    const sync = d.config.sync!;
    dev = openDevice(
      {
        brokerUrl: sync.brokerUrl,
        deviceConnect: () => ({ username: sync.username!, password: sync.password! }),
        server: { publicKeyPem: sync.serverPublicKey! },
      },
      deviceId,
      ['transit', 'stoplist'],
      { batchSize: 50, log: devLog.log },
    );
  }, 4 * SLOW_MS);

  afterAll(async () => {
    stopTapping();
    await dev?.close();
    registry?.close();
    await procs.stopAll();
    await pg?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  }, SLOW_MS);

  it(
    'one leads, both ingest; kill -9 of the leader: the other leads, list changes reach the device, no acknowledged entry lost',
    async () => {
      expect(b.ledAt).toEqual([]); // the second instance follows
      await waitFor(() => dev.store.entryCount('transit') === 200, {
        timeoutMs: SLOW_MS,
        what: () => `the device to hold the 200-card transit list (it has ${dev.store.entryCount('transit')})`,
      });

      const rewinds: { upTo: number; from: number }[] = [];
      dev.client.on('rewound', (r: { upTo: number; from: number }) => rewinds.push(r));
      // the device journals a tap every 20 ms and uploads as it goes
      const cfg = busConfig(deviceId);
      const T0 = Date.parse('2026-11-24T09:00:00+03:00');
      let n = 0;
      tapper = setInterval(() => {
        tap(dev, cfg, tokenOf(n % 200), T0 + n * 600_000);
        n++;
        dev.client.notify();
      }, 20);
      // shared ingest: both instances store some of the uploads
      const by = { a: 0, b: 0 };
      await waitFor(
        async () => {
          [by.a, by.b] = [await ingested(a), await ingested(b)];
          return by.a > 0 && by.b > 0 && dev.store.ackedSeq() >= 100;
        },
        {
          timeoutMs: SLOW_MS,
          everyMs: 200,
          what: () => `both instances to ingest: a ${by.a}, b ${by.b}, acknowledged ${dev.store.ackedSeq()} of ${dev.store.lastSeq()}`,
        },
      );

      // the same import through the first leader, before the kill: what an import costs here without a failover
      const importBefore = await importReaches(a, 200);

      // kill -9 of the leader while the device uploads: entries journaled, not yet acknowledged
      await waitFor(() => dev.store.lastSeq() > dev.store.ackedSeq(), { timeoutMs: SLOW_MS, what: 'a moment with entries not yet acknowledged' });
      expect(b.ledAt).toEqual([]);
      const ackedAtKill = dev.store.ackedSeq();
      const lastAtKill = dev.store.lastSeq();
      const stoplistBefore = dev.store.listVersion('stoplist');
      const tKill = Date.now();
      a.child.kill('SIGKILL');
      // what the device saw acknowledged is in the registry already, before any failover
      expect(registry.prepare('SELECT count(*) FROM journal WHERE device = ? AND seq <= ?').pluck().get(deviceId, ackedAtKill)).toBe(ackedAtKill);
      // a stop-list change through the surviving instance, at once (it may still follow: it marks the change for the leader)
      const tStop = Date.now();
      await api(b, 'POST', '/v1/stoplist', JSON.stringify({ pan: syntheticPan(10_007), expiry: '12/30', reason: 'lost' }));

      await waitFor(() => b.ledAt.length > 0, { timeoutMs: 3 * WITHIN_MS, what: () => `instance b to lead after the kill:\n${b.tail()}` });
      const takeover = b.ledAt[0]! - tKill;
      await waitFor(() => dev.store.listVersion('stoplist') > stoplistBefore, {
        timeoutMs: 3 * WITHIN_MS,
        what: () => `the stop-list change to reach the device (version ${dev.store.listVersion('stoplist')})`,
      });
      const stopToDevice = Date.now() - tStop;

      // an import through the new leader
      const importToDevice = await importReaches(b, 220);

      // the device goes on tapping a while on the one instance left, then stops: everything it journaled is acknowledged
      await waitFor(() => dev.store.ackedSeq() > lastAtKill + 100, {
        timeoutMs: SLOW_MS,
        what: () => `uploads after the failover (acknowledged ${dev.store.ackedSeq()})`,
      });
      stopTapping();
      const last = dev.store.lastSeq();
      await waitFor(() => dev.store.ackedSeq() === last, {
        timeoutMs: SLOW_MS,
        what: () => `every entry acknowledged (${dev.store.ackedSeq()} of ${last})`,
      });
      const unackedAtKill = lastAtKill - ackedAtKill;
      const doubted = () => devLog.records().filter((r) => String(r.msg).includes('asking again')).length;
      console.log(
        `failover-e2e: kill -9 of the leader → the other instance leads after ${takeover} ms; a stop-list change made at the kill reaches the device after ${stopToDevice} ms; ` +
          `an import through the new leader after ${importToDevice} ms (through the first leader before the kill ${importBefore} ms); at the kill ${ackedAtKill} entries acknowledged, ${unackedAtKill} not yet; in the end ${last} of ${last} acknowledged; lower acks doubted ${doubted()}, believed (rewinds) ${JSON.stringify(rewinds)}`,
      );

      expect(unackedAtKill).toBeGreaterThan(0);
      expect(takeover).toBeGreaterThan(0);
      expect(takeover).toBeLessThan(WITHIN_MS);
      expect(stopToDevice).toBeLessThan(WITHIN_MS);
      // an import's own time on PostgreSQL under load (7 s at load 13, docs/postgres.md) is the import's, not the
      // failover's: through the new leader it takes less than 10 s more than the same import before the kill
      expect(importToDevice).toBeLessThan(importBefore + WITHIN_MS);
      // every entry the device journaled, acknowledged before or after the kill, is in the registry exactly once
      const counts = registry
        .prepare('SELECT count(*) AS n, count(DISTINCT seq) AS "distinct", min(seq) AS min, max(seq) AS max FROM journal WHERE device = ?')
        .get(deviceId) as { n: number; distinct: number; min: number; max: number };
      expect(counts).toEqual({ n: last, distinct: last, min: 1, max: last });
      const twice = registry
        .prepare('SELECT count(*) FROM (SELECT seq FROM journal WHERE device = ? GROUP BY seq HAVING count(*) > 1) d')
        .pluck()
        .get(deviceId);
      expect(twice).toBe(0);
      expect(dev.store.journalBacklog()).toBe(0);
    },
    6 * SLOW_MS,
  );
});
