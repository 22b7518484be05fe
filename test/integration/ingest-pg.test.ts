import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { loadPublicKey } from '../../protocol/wire/envelope.js';
import { topics } from '../../protocol/wire/topics.js';
import { verifyJournalAck } from '../../protocol/wire/verify.js';
import { openDatabase } from '../../sync-server/db/open.js';
import { Ingest } from '../../sync-server/ingest.js';
import { onJournalsStored } from '../../sync-server/notify/outbox.js';
import { Settlement } from '../../sync-server/settlement/index.js';
import type { Db } from '../../sync-server/registry.js';
import { fullFareEntry } from '../support/journal-rows.js';
import { mosquittoRig, type RunningBroker } from '../support/rig/broker.js';
import { requirePostgres, startPostgres, type PgServer } from '../support/rig/postgres.js';
import { stopChild } from '../support/rig/procs.js';
import { waitFor } from '../support/wait.js';

/**
 * Journal ingest on PostgreSQL (issue 16): uploads are stored in multi-row statements, a group of them in one
 * transaction (sync-server/ingest.ts storeAll). Each (device, seq) counts once whatever repeats it (a duplicate in a
 * batch, a batch replayed in the same group or later, another instance's connection), impossible trips are flagged
 * whatever the arrival order, and a server killed with -9 while uploads are in flight has lost nothing it acknowledged.
 */
const run = requirePostgres('ingest-pg.test.ts');
const NO_LIMIT = { burst: Number.MAX_SAFE_INTEGER, perSecond: Number.MAX_SAFE_INTEGER };
const token = (i: number) => `${i.toString(16).padStart(31, '0')}a`;
const entry = (seq: number, card = seq, extra: Partial<WireJournalEntry> = {}): WireJournalEntry =>
  fullFareEntry(seq, token(card), new Date(Date.now() - 3_600_000 + seq * 100).toISOString(), extra);

describe.skipIf(!run)('journal ingest on PostgreSQL', () => {
  let pg: PgServer;
  const dbs: Db[] = [];
  const children: ChildProcess[] = [];
  let broker: RunningBroker | null = null;
  const dirs: string[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    for (const c of children) await stopChild(c, 'SIGKILL');
    for (const db of dbs) db.close();
    await broker?.close();
    await pg?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const open = (url: string): Db => {
    const { db } = openDatabase({ kind: 'postgres', url });
    dbs.push(db);
    return db;
  };

  it('a duplicate in a batch, a batch replayed in the same group or later, and another connection store each entry once', async () => {
    const url = pg.createDatabase('once');
    const db = open(url);
    const ing = new Ingest(db, {}, NO_LIMIT, 'group');
    const a = { device: 'd1', entries: [entry(1), entry(2), entry(2), entry(3)] };
    // one turn of the event loop: one group, one transaction
    const [r1, r2, r3] = await Promise.all([ing.submit('d1', a), ing.submit('d1', a), ing.submit('d2', { device: 'd2', entries: [entry(1), entry(2)] })]);
    expect([r1.stored, r2.stored, r3.stored]).toEqual([3, 0, 2]);
    expect([r1.upTo, r2.upTo, r3.upTo]).toEqual([3, 3, 2]);
    // replayed later, and a batch overlapping what is stored
    expect(await ing.submit('d1', a)).toMatchObject({ stored: 0, upTo: 3 });
    expect(await ing.submit('d1', { device: 'd1', entries: [entry(3), entry(4), entry(5)] })).toMatchObject({ stored: 2, upTo: 5 });
    // another instance's connection: what is there stays once, the new entry is added, the ack moves on
    const other = new Ingest(open(url), {}, NO_LIMIT, 'group');
    expect(await other.submit('d1', { device: 'd1', entries: [1, 2, 3, 4, 5, 6].map((s) => entry(s)) })).toMatchObject({ stored: 1, upTo: 6 });
    // a gap: 8 is stored but not acknowledged until 7 comes (from either connection)
    expect(await ing.submit('d1', { device: 'd1', entries: [entry(8)] })).toMatchObject({ stored: 1, upTo: 6 });
    expect(await other.submit('d1', { device: 'd1', entries: [entry(7)] })).toMatchObject({ stored: 1, upTo: 8 });
    expect(db.prepare('SELECT device, count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS m FROM journal GROUP BY device ORDER BY device').all()).toEqual([
      { device: 'd1', n: 8, d: 8, m: 8 },
      { device: 'd2', n: 2, d: 2, m: 2 },
    ]);
    expect(db.prepare('SELECT id, acked FROM devices ORDER BY id').all()).toEqual([
      { id: 'd1', acked: 8 },
      { id: 'd2', acked: 2 },
    ]);
    // each new entry's card and day waits for settlement, once
    const days = db.prepare('SELECT count(*) FROM (SELECT DISTINCT token, service_day FROM journal) t').pluck().get() as number;
    expect(db.prepare('SELECT count(*) FROM settle_dirty').pluck().get()).toBe(days);
    expect(days).toBeGreaterThanOrEqual(8);
  });

  it('the same card on two buses within the window: the later tap is flagged, whichever arrives first', async () => {
    const url = pg.createDatabase('trip');
    const db = open(url);
    const ing = new Ingest(db, {}, NO_LIMIT, 'group');
    const at = (ms: number) => new Date(Date.now() - 3_600_000 + ms).toISOString();
    const bus = (seq: number, ms: number, vehicle: string) => fullFareEntry(seq, token(77), at(ms), { data: { effectiveTime: at(ms), route: '1', vehicle } });
    // the later tap (v2, +10 s) arrives first, then the earlier one (v1): the later one is flagged, the earlier not
    await ing.submit('b2', { device: 'b2', entries: [bus(1, 10_000, 'v2')] });
    await ing.submit('b1', { device: 'b1', entries: [bus(1, 0, 'v1')] });
    // in one group: a third tap on v1 at +20 s is impossible after v2's (+10 s)
    await Promise.all([
      ing.submit('b1', { device: 'b1', entries: [bus(2, 20_000, 'v1')] }),
      ing.submit('b3', { device: 'b3', entries: [bus(1, 3_600_000, 'v3')] }),
    ]);
    expect(db.prepare('SELECT device, seq, settle_code AS code FROM journal ORDER BY device, seq').all()).toEqual([
      { device: 'b1', seq: 1, code: null },
      { device: 'b1', seq: 2, code: ErrorCode.SettlementImpossibleTrip },
      { device: 'b2', seq: 1, code: ErrorCode.SettlementImpossibleTrip },
      { device: 'b3', seq: 1, code: null },
    ]);
  });

  it('the statements that look up a group of rows in the journal, cards, entries and day totals probe an index per row, even in a plan made while the journal was small', async () => {
    const db = open(pg.createDatabase('plans'));
    const ing = new Ingest(db, {}, NO_LIMIT);
    new Settlement(db); // prepares its statements
    onJournalsStored(db, [{ device: 'x', e: entry(1, 1, { kind: 'turnstile', data: { direction: 'entry' } }), effMs: Date.now() }]); // and the guardians' one
    // a small journal, analysed: the statistics a registry has early on, and that a cached generic plan keeps as it grows
    for (let d = 0; d < 4; d++) ing.store(`d${d}`, null, { device: `d${d}`, entries: Array.from({ length: 250 }, (_, k) => entry(k + 1, d * 1000 + k)) });
    db.exec(`INSERT INTO cards(person_id, token, key_version, expiry, updated_at) SELECT 'p' || i, 'c' || i, 1, '2031-06', '' FROM generate_series(1, 1000) i;
      INSERT INTO entries(scope, token, rec) SELECT 'transit', 'c' || i, '\\x00' FROM generate_series(1, 1000) i;
      INSERT INTO day_totals(token, service_day, amount, taps, first_ms, first_device, first_seq) SELECT 'c' || i, '2026-12-01', 0, 1, 0, 'd', i FROM generate_series(1, 1000) i;
      ANALYZE`);
    db.exec('SET plan_cache_mode = force_generic_plan');
    const plan = (name: string, types: string): string => {
      const args = types
        .replace(/[{}]/g, '')
        .split(',')
        .map((t) => (t === 'bigint' ? '0' : "'[]'"));
      return (db.prepare(`EXPLAIN EXECUTE ${name}(${args.join(', ')})`).all() as { 'QUERY PLAN': string }[]).map((r) => r['QUERY PLAN']).join('\n');
    };
    const probes = db
      .prepare(
        "SELECT name, statement, CAST(parameter_types AS TEXT) AS types FROM pg_prepared_statements WHERE statement LIKE '%CROSS JOIN LATERAL%' AND statement NOT LIKE '%pg_prepared_statements%'",
      )
      .all() as { name: string; statement: string; types: string }[];
    const tables = probes.map((p) => /LATERAL \(SELECT \* FROM (\w+)/.exec(p.statement)![1]).sort();
    expect(tables).toEqual(['cards', 'day_totals', 'entries', 'journal', 'journal', 'journal']); // ingest: conflicts, next run; settlement: taps, transit, totals; notify: guardians
    const whole = /Seq Scan on (journal|cards|entries|day_totals)|Hash Join|Bitmap Heap Scan on journal/;
    for (const p of probes) {
      const text = plan(p.name, p.types);
      expect(text, p.statement).not.toMatch(whole);
      expect(text, p.statement).toMatch(/Nested Loop/);
    }
    // the join these replaced, in the same state: the whole journal for every group (the check above has teeth)
    db.exec(
      `PREPARE plain(text) AS SELECT b.p0 FROM (SELECT e ->> 0 AS p0, CAST(e ->> 1 AS BIGINT) AS p1 FROM jsonb_array_elements(CAST($1 AS jsonb)) AS e) b
       CROSS JOIN journal j WHERE j.device = b.p0 AND j.seq = b.p1`,
    );
    for (let d = 4; d < 40; d++) ing.store(`d${d}`, null, { device: `d${d}`, entries: Array.from({ length: 250 }, (_, k) => entry(k + 1, d * 1000 + k)) });
    expect(plan('plain', '{text}')).toMatch(whole);
  });

  it('a server killed with -9 while uploads are in flight has lost no acknowledged entry; after restarts every entry is stored once', async () => {
    const url = pg.createDatabase('crash');
    const db = open(url);
    broker = await mosquittoRig.start();
    const dir = mkdtempSync(join(tmpdir(), 'rc-ingest-crash-'));
    dirs.push(dir);
    let server: ChildProcess | null = null;
    const start = async () => {
      const c = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(import.meta.dirname, '..', 'support', 'ingest-server-child.ts'),
          JSON.stringify({ dataDir: dir, database: url, brokerUrl: broker!.url }),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(c);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('server did not start')), 60_000);
        c.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
        createInterface({ input: c.stdout! }).on('line', (l) => {
          if (l === 'ready') {
            clearTimeout(t);
            resolve();
          }
        });
      });
      server = c;
    };
    await start();
    const key = loadPublicKey(readFileSync(join(dir, 'signing-key.pub.pem'), 'utf8'));
    const TOTAL = 4000;
    const BATCH = 100;
    let acked = 0;
    let ackAt = Date.now();
    const dev: MqttClient = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: 'crash-dev', clean: true, reconnectPeriod: 200 });
    try {
      dev.on('message', (_t, p) => {
        if (p.length === 0) return;
        const upTo = verifyJournalAck(p, key, 'crash-dev', TOTAL).upTo;
        if (upTo > acked) [acked, ackAt] = [upTo, Date.now()];
      });
      await dev.subscribeAsync(topics.journalAck('crash-dev'), { qos: 1 });
      const body = (from: number) =>
        Buffer.from(JSON.stringify({ device: 'crash-dev', entries: Array.from({ length: BATCH }, (_v, k) => entry(from + k, 1000 + from + k)) }));
      // the device: batches ahead of the ack (window 1,000), sent again from the ack when none comes for 2 s
      let sent = 0;
      let stop = false;
      const pump = (async () => {
        while (!stop && acked < TOTAL) {
          if (Date.now() - ackAt > 2000) [sent, ackAt] = [acked, Date.now()];
          if (sent < TOTAL && sent - acked < 1000 && dev.connected) {
            await dev.publishAsync(topics.journal('crash-dev'), body(sent + 1), { qos: 1 }).catch(() => undefined);
            sent += BATCH;
          } else await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const stored = db.prepare("SELECT count(*) FROM journal WHERE device = 'crash-dev' AND seq <= ?").pluck();
      for (const at of [800, 2000, 3000]) {
        await waitFor(() => acked >= at, { timeoutMs: 60_000, what: `ack ${at}` });
        server!.kill('SIGKILL'); // uploads are in flight: received, being stored, or stored and not yet acknowledged
        await new Promise((r) => server!.once('exit', r));
        const seen = acked;
        expect(stored.get(seen), `every entry up to the last ack seen (${seen}) is in the journal`).toBe(seen);
        await start();
      }
      await waitFor(() => acked >= TOTAL, { timeoutMs: 120_000, what: 'every entry acknowledged' });
      stop = true;
      await pump;
      expect(db.prepare("SELECT count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS m FROM journal WHERE device = 'crash-dev'").get()).toEqual({
        n: TOTAL,
        d: TOTAL,
        m: TOTAL,
      });
    } finally {
      await dev.endAsync(true);
      await stopChild(server, 'SIGKILL');
    }
  }, 300_000);
});
