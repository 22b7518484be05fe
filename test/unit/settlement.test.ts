import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { onPostgres, openTestRegistry } from '../support/test-db.js';
import { ErrorCode } from '../../protocol/errors.js';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { ChargingQueue, SimulatedCharger } from '../../sync-server/charging.js';
import { applyImport, parseImport, type ImportKind } from '../../sync-server/import.js';
import { Ingest } from '../../sync-server/ingest.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { Publisher } from '../../sync-server/publisher.js';
import { REGISTRY_SCHEMA } from '../../sync-server/db/migrations/legacy.js';
import { openRegistry, type Db } from '../../sync-server/registry.js';
import { Settlement, queryAdjustments, queryCharges, queryJournal, serviceDay, settlementOptions } from '../../sync-server/settlement/index.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';

/**
 * The back office's fare engine over a real SQLite registry: taps of several
 * devices fed through Ingest as journal batches, settled with the published
 * rules (test/fixtures/settlement/rules.json: full fare 35 ₽, pensioners 50 %
 * for 2 trips a month, free transfer within an hour, daily cap 100 ₽).
 */
const log = createLogger({ level: 'silent' });
const RULES = JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8')) as unknown;
const msk = (local: string) => Date.parse(`${local}+03:00`);
const NOW = new Date('2026-11-20T12:00:00+03:00'); // ingest time: every tap below is within range

const dirs: string[] = [];
interface Reg {
  db: Db;
  pub: Publisher;
  ingest: Ingest;
  settlement: Settlement;
  seq: Map<string, number>;
}
async function registry(opts: { rules?: boolean; dayEndsAt?: string } = {}): Promise<Reg> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-settle-'));
  dirs.push(dir);
  const db = openTestRegistry(dir);
  const popts = { manifestTtlMs: 86_400_000, deltaRetentionMs: 86_400_000, chunkRecords: 100, maxDeltaRecords: 1000 };
  const pub = new Publisher(db, loadOrCreateSigningKey(dir).privateKey, log, popts);
  pub.setTransport({ publish: async () => undefined });
  const s = { dayEndsAt: opts.dayEndsAt ?? '00:00' };
  const reg: Reg = { db, pub, ingest: new Ingest(db, s), settlement: new Settlement(db, s), seq: new Map() };
  await imp(reg, 'cards', cardsCsv(0, 20));
  await imp(reg, 'benefits', benefitsCsv(10, 5)); // persons 10..14 are pensioners
  if (opts.rules !== false) pub.setConfig('rules', RULES);
  return reg;
}
async function imp(r: Reg, kind: ImportKind, text: string) {
  async function* lines() {
    yield text; // the CSV text in one chunk (the parser streams any chunking)
  }
  const { rows } = await parseImport(kind, lines(), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-01' });
  await r.pub.publish(r.pub.commit(applyImport(r.db, kind, rows, '2026-11-01')));
}
let regs: Reg[] = [];
beforeEach(() => {
  regs = [];
});
afterEach(() => {
  for (const r of regs) r.db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
async function fresh(opts: { rules?: boolean; dayEndsAt?: string } = {}): Promise<Reg> {
  const r = await registry(opts);
  regs.push(r);
  return r;
}

interface TapSpec {
  device: string;
  at: string; // local Moscow time, e.g. 2026-11-10T09:00:00
  card: number;
  route?: string | null;
  vehicle?: string;
  /** what the device decided (it saw only its own taps) */
  reason?: string;
  fare?: number;
  result?: 'allow' | 'deny';
  flags?: string[];
  seq?: number;
}
function wire(r: Reg, t: TapSpec): WireJournalEntry {
  const seq = t.seq ?? (r.seq.get(t.device) ?? 0) + 1;
  r.seq.set(t.device, Math.max(seq, r.seq.get(t.device) ?? 0));
  const time = new Date(msk(t.at)).toISOString();
  const data: Record<string, unknown> = { effectiveTime: time, vehicle: t.vehicle ?? `v-${t.device}`, flags: t.flags ?? ['deferred-charge'] };
  if (t.route !== null) data.route = t.route ?? '1';
  return {
    seq,
    time,
    token: tokenOf(t.card),
    kind: 'bus',
    result: t.result ?? 'allow',
    reason: t.reason ?? 'full-fare',
    fareKopecks: t.fare ?? 3500,
    benefit: null,
    lists: { transit: 1 },
    data,
  };
}
/** Upload taps as journal batches, one per device, in the order given. */
function upload(r: Reg, taps: TapSpec[], now = NOW): void {
  const byDevice = new Map<string, WireJournalEntry[]>();
  for (const t of taps) byDevice.set(t.device, [...(byDevice.get(t.device) ?? []), wire(r, t)]);
  for (const [device, entries] of byDevice) r.ingest.store(device, null, { device, entries }, now);
}
function settled(r: Reg, device: string, seq: number): { fare: number | null; reason: string | null; code: string | null } {
  const q = 'SELECT settled_fare AS fare, settled_reason AS reason, settle_code AS code FROM journal WHERE device = ? AND seq = ?';
  return r.db.prepare(q).get(device, seq) as never;
}
function queue(r: Reg): ChargingQueue {
  // stop-list at the first decline (the retry policy is server-guard.test.ts's)
  return new ChargingQueue(r.db, new SimulatedCharger(r.db), async (d) => void (await r.pub.publish(r.pub.commit(d))), log, r.settlement, {
    attempts: 1,
    overDays: 0,
  });
}

describe('settlement: the fleet-wide rules', () => {
  it('a tap on a second vehicle within the window is a transfer, though its device charged full fare', async () => {
    const r = await fresh();
    upload(r, [
      { device: 'bus-a', at: '2026-11-10T09:00:00', card: 1, route: '1' },
      { device: 'bus-b', at: '2026-11-10T09:20:00', card: 1, route: '2' },
    ]);
    expect(r.settlement.settleDirty(NOW)).toMatchObject({ cards: 1, taps: 2, adjustments: 1 });
    expect(settled(r, 'bus-a', 1)).toEqual({ fare: 3500, reason: 'full-fare', code: null });
    expect(settled(r, 'bus-b', 1)).toEqual({ fare: 0, reason: 'transfer', code: null });
    expect(queryAdjustments(r.db, { limit: 10 }).adjustments).toEqual([
      {
        token: tokenOf(1),
        serviceDay: '2026-11-10',
        device: 'bus-b',
        seq: 1,
        kind: 'tap',
        deviceDecision: { fareKopecks: 3500, reason: 'full-fare' },
        settled: { fareKopecks: 0, reason: 'transfer' },
      },
    ]);
  });

  it('a monthly benefit quota counts the trips on every device', async () => {
    const r = await fresh();
    const pens = { card: 10, fare: 1750, reason: 'benefit' };
    upload(
      r,
      [
        { device: 'bus-a', at: '2026-11-03T08:00:00', route: '1', ...pens },
        { device: 'bus-b', at: '2026-11-04T08:00:00', route: '1', ...pens },
        { device: 'bus-a', at: '2026-11-05T08:00:00', route: '1', ...pens },
        { device: 'bus-b', at: '2026-12-01T08:00:00', route: '1', ...pens, seq: 5 }, // a new month: the quota resets
      ],
      new Date('2026-12-02T12:00:00+03:00'),
    );
    r.settlement.settleDirty(NOW);
    expect(settled(r, 'bus-a', 1)).toMatchObject({ fare: 1750, reason: 'benefit' });
    expect(settled(r, 'bus-b', 1)).toMatchObject({ fare: 1750, reason: 'benefit' });
    expect(settled(r, 'bus-a', 2)).toMatchObject({ fare: 3500, reason: 'quota-exhausted' });
    expect(settled(r, 'bus-b', 5)).toMatchObject({ fare: 1750, reason: 'benefit' });
  });

  it('the daily cap holds across devices', async () => {
    const r = await fresh();
    upload(r, [
      { device: 'bus-a', at: '2026-11-10T07:00:00', card: 2, route: '1' },
      { device: 'bus-b', at: '2026-11-10T09:00:00', card: 2, route: '2' },
      { device: 'bus-c', at: '2026-11-10T11:00:00', card: 2, route: '3' },
      { device: 'bus-d', at: '2026-11-10T13:00:00', card: 2, route: '4' },
    ]);
    r.settlement.settleDirty(NOW);
    expect(['bus-a', 'bus-b', 'bus-c', 'bus-d'].map((d) => settled(r, d, 1))).toEqual([
      { fare: 3500, reason: 'full-fare', code: null },
      { fare: 3500, reason: 'full-fare', code: null },
      { fare: 3000, reason: 'capped', code: null },
      { fare: 0, reason: 'capped', code: null },
    ]);
  });

  it('a service day may end at 04:00: a tap at 01:30 belongs to the day before', () => {
    const o = settlementOptions({ dayEndsAt: '04:00' });
    expect(serviceDay(msk('2026-11-11T01:30:00'), o)).toBe('2026-11-10');
    expect(serviceDay(msk('2026-11-11T04:00:00'), o)).toBe('2026-11-11');
    expect(serviceDay(msk('2026-11-11T01:30:00'), settlementOptions())).toBe('2026-11-11');
  });
});

describe('settlement: late taps, determinism, flagged entries', () => {
  it("a late device's upload re-settles the card's day and records an adjustment", async () => {
    const r = await fresh();
    upload(r, [{ device: 'bus-a', at: '2026-11-10T10:00:00', card: 3, route: '1' }]);
    const q = queue(r);
    await q.runOnce(new Date('2026-11-11T12:00:00+03:00')); // the day closes and is charged: 35 ₽
    expect(queryCharges(r.db, { limit: 10 }).charges).toEqual([
      { token: tokenOf(3), serviceDay: '2026-11-10', amountKopecks: 3500, taps: 1, status: 'charged', reason: null },
    ]);
    // bus-b was offline for three days: its tap came first, on another route, so bus-a's became a free transfer
    upload(r, [{ device: 'bus-b', at: '2026-11-10T09:40:00', card: 3, route: '2' }], new Date('2026-11-13T12:00:00+03:00'));
    r.settlement.settleDirty(NOW);
    expect(settled(r, 'bus-b', 1)).toMatchObject({ fare: 3500, reason: 'full-fare' });
    expect(settled(r, 'bus-a', 1)).toMatchObject({ fare: 0, reason: 'transfer' });
    expect(queryAdjustments(r.db, { token: tokenOf(3), limit: 10 }).adjustments).toEqual([
      expect.objectContaining({
        device: 'bus-a',
        seq: 1,
        kind: 'tap',
        deviceDecision: { fareKopecks: 3500, reason: 'full-fare' },
        settled: { fareKopecks: 0, reason: 'transfer' },
      }),
    ]);
    // a late tap that changes an already charged day's total: a charge adjustment, never a second charge
    upload(r, [{ device: 'bus-c', at: '2026-11-10T18:00:00', card: 3, route: '1' }], new Date('2026-11-13T12:00:00+03:00'));
    await q.runOnce(new Date('2026-11-13T12:00:00+03:00'));
    expect(queryCharges(r.db, { token: tokenOf(3), limit: 10 }).charges).toHaveLength(1);
    expect(queryAdjustments(r.db, { token: tokenOf(3), limit: 10 }).adjustments).toContainEqual(
      expect.objectContaining({
        kind: 'charge',
        deviceDecision: { fareKopecks: 3500, reason: 'charged' },
        settled: { fareKopecks: 7000, reason: 're-settled' },
      }),
    );
  });

  it('the same journal in any arrival order gives the same settlement and the same charges', async () => {
    const devices = ['bus-a', 'bus-b', 'bus-c'];
    const tapArb = fc.record({
      d: fc.integer({ min: 0, max: 2 }),
      card: fc.constantFrom(1, 2, 10, 11, 19),
      min: fc.integer({ min: 0, max: 3 * 24 * 60 - 1 }),
      route: fc.constantFrom('1', '2', '3', '9'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(tapArb, { minLength: 1, maxLength: 40 }), fc.integer(), async (raw, seed) => {
        const taps: TapSpec[] = [];
        const seqs = [0, 0, 0];
        for (const t of raw) {
          const at = new Date(msk('2026-11-09T00:00:00') + t.min * 60_000 + 3 * 3_600_000).toISOString().slice(0, 19);
          taps.push({ device: devices[t.d]!, seq: ++seqs[t.d]!, at, card: t.card, route: t.route });
        }
        const result = async (order: TapSpec[], settleBetween: boolean) => {
          const r = await fresh();
          for (let i = 0; i < order.length; i += 3) {
            upload(r, order.slice(i, i + 3));
            if (settleBetween) r.settlement.settleDirty(NOW);
          }
          await queue(r).runOnce(NOW);
          const rows = r.db.prepare('SELECT device, seq, settled_fare, settled_reason, settle_code FROM journal ORDER BY device, seq').all();
          const charges = r.db.prepare('SELECT token, service_day, amount, taps, status FROM charges ORDER BY token, service_day').all();
          const adj = r.db
            .prepare("SELECT * FROM adjustments WHERE kind = 'tap' ORDER BY device, seq")
            .all()
            .map((a) => ({ ...(a as object), created_at: 0 }));
          return { rows, charges, adj };
        };
        let s = seed;
        const shuffled = [...taps].sort(() => ((s = (s * 1103515245 + 12345) | 0) & 1 ? 1 : -1));
        expect(await result(shuffled, true)).toEqual(await result(taps, false));
      }),
      {
        // on PostgreSQL each run makes two databases (and keeps their connections open until the test ends): fewer runs
        numRuns: onPostgres ? 6 : 15,
        // found by CI: card 10 on route 1 then on route 9 (not in the tariff) in the same minute; when the route-9 tap
        // came first and was settled as an unknown route, the route-1 tap arriving later did not flag it impossible
        examples: [
          [
            [
              { d: 0, card: 10, min: 0, route: '1' },
              { d: 0, card: 1, min: 0, route: '1' },
              { d: 0, card: 1, min: 0, route: '1' },
              { d: 0, card: 10, min: 0, route: '9' },
            ],
            7292617,
          ],
        ],
      },
    );
  }, 120_000);

  it('an entry with an unknown route or a time far off is stored and flagged, left out of settlement, and listed', async () => {
    const r = await fresh();
    upload(r, [
      { device: 'bus-a', at: '2026-11-10T09:00:00', card: 4, route: 'X9' },
      { device: 'bus-a', at: '2026-11-10T09:30:00', card: 4, route: null },
      { device: 'bus-a', at: '2031-01-01T09:00:00', card: 4, route: '1' },
      { device: 'bus-a', at: '2026-11-10T11:00:00', card: 4, route: '1' },
    ]);
    expect(r.db.prepare("SELECT count(*) FROM journal WHERE device = 'bus-a'").pluck().get()).toBe(4);
    await queue(r).runOnce(NOW);
    expect([1, 2, 3, 4].map((s) => settled(r, 'bus-a', s))).toEqual([
      { fare: null, reason: null, code: ErrorCode.SettlementUnknownRoute },
      { fare: null, reason: null, code: ErrorCode.SettlementUnknownRoute },
      { fare: null, reason: null, code: ErrorCode.SettlementTimeOutOfRange },
      { fare: 3500, reason: 'full-fare', code: null },
    ]);
    const flagged = queryJournal(r.db, { flagged: true, limit: 10 }).entries;
    expect(flagged.map((e) => [e.seq, e.flagged, e.settled])).toEqual([
      [1, 'settlement.unknown-route', null],
      [2, 'settlement.unknown-route', null],
      [3, 'settlement.time-out-of-range', null],
    ]);
    expect(queryCharges(r.db, { limit: 10 }).charges).toEqual([expect.objectContaining({ token: tokenOf(4), amountKopecks: 3500, taps: 1 })]);
  });

  it('the journal shows both decisions with route and vehicle', async () => {
    const r = await fresh();
    upload(r, [
      { device: 'bus-a', at: '2026-11-10T09:00:00', card: 1, route: '1', vehicle: 'A123' },
      { device: 'bus-b', at: '2026-11-10T09:20:00', card: 1, route: '2', vehicle: 'B456' },
    ]);
    r.settlement.settleDirty(NOW);
    const e = queryJournal(r.db, { device: 'bus-b', limit: 10 }).entries[0]!;
    expect(e).toMatchObject({ route: '2', vehicle: 'B456', reason: 'full-fare', fareKopecks: 3500, flagged: null });
    expect(e.settled).toEqual({ fareKopecks: 0, reason: 'transfer' });
    expect(e).toMatchObject({ effectiveTime: '2026-11-10T06:20:00.000Z', serviceDay: '2026-11-10', flags: ['deferred-charge'], lists: { transit: 1 } });
  });
});

describe('aggregated charging', () => {
  it('exactly one charge per card per closed service day, for the settled amount; the open day waits', async () => {
    const r = await fresh();
    upload(r, [
      { device: 'bus-a', at: '2026-11-10T08:00:00', card: 5, route: '1' },
      { device: 'bus-b', at: '2026-11-10T08:30:00', card: 5, route: '2' }, // transfer: 0
      { device: 'bus-b', at: '2026-11-10T17:00:00', card: 5, route: '2' },
      { device: 'bus-a', at: '2026-11-10T17:00:00', card: 6, route: '1' },
      { device: 'bus-a', at: '2026-11-11T08:00:00', card: 5, route: '1' },
    ]);
    const q = queue(r);
    await q.runOnce(new Date('2026-11-11T12:00:00+03:00'));
    await q.runOnce(new Date('2026-11-11T13:00:00+03:00'));
    expect(queryCharges(r.db, { limit: 10 }).charges.map(({ reason: _, ...c }) => c)).toEqual([
      { token: tokenOf(5), serviceDay: '2026-11-10', amountKopecks: 7000, taps: 3, status: 'charged' },
      { token: tokenOf(6), serviceDay: '2026-11-10', amountKopecks: 3500, taps: 1, status: 'charged' },
    ]);
    await q.runOnce(new Date('2026-11-12T00:00:00+03:00'));
    expect(queryCharges(r.db, { token: tokenOf(5), limit: 10 }).charges.map((c) => [c.serviceDay, c.amountKopecks])).toEqual([
      ['2026-11-10', 7000],
      ['2026-11-11', 3500],
    ]);
  });

  it('a declined charge puts the card on the stop-list; a repayment takes it off', async () => {
    const r = await fresh();
    upload(r, [
      { device: 'bus-a', at: '2026-11-10T08:00:00', card: 7, route: '1' },
      { device: 'bus-b', at: '2026-11-10T12:00:00', card: 7, route: '1' },
      { device: 'bus-a', at: '2026-11-10T09:00:00', card: 8, route: '1' },
    ]);
    const q = queue(r);
    q.setDeclined([tokenOf(7)]);
    expect(await q.runOnce(NOW)).toBe(1);
    expect(queryCharges(r.db, { limit: 10 }).charges.map((c) => [c.token, c.amountKopecks, c.status])).toEqual([
      [tokenOf(7), 7000, 'declined'],
      [tokenOf(8), 3500, 'charged'],
    ]);
    expect(r.db.prepare('SELECT reason FROM stoplist WHERE token = ?').pluck().get(tokenOf(7))).toBe('charge-declined');
    const v = r.pub.version('stoplist');
    expect(await q.repay(tokenOf(7))).toEqual({ settled: 1, unblocked: true });
    expect(r.pub.version('stoplist')).toBe(v + 1);
    expect(r.db.prepare('SELECT count(*) FROM stoplist').pluck().get()).toBe(0);
    expect(queryCharges(r.db, { token: tokenOf(7), limit: 10 }).charges[0]!.status).toBe('repaid');
  });

  it('a card stop-listed for a declined charge just after midnight in Moscow is so since the new local day, not the UTC date', async () => {
    const r = await fresh();
    upload(r, [{ device: 'bus-a', at: '2026-11-10T08:00:00', card: 7, route: '1' }]);
    const q = queue(r);
    q.setDeclined([tokenOf(7)]);
    expect(await q.runOnce(new Date('2026-11-11T00:30:00+03:00'))).toBe(1); // 2026-11-10T21:30Z
    expect(r.db.prepare('SELECT since FROM stoplist WHERE token = ?').pluck().get(tokenOf(7))).toBe('2026-11-11');
  });

  it('without a published tariff the devices\u2019 decisions stand as settled', async () => {
    const r = await fresh({ rules: false });
    upload(r, [
      { device: 'bus-a', at: '2026-11-10T09:00:00', card: 1, route: '1' },
      { device: 'bus-b', at: '2026-11-10T09:20:00', card: 1, route: '2' },
    ]);
    await queue(r).runOnce(NOW);
    expect(settled(r, 'bus-b', 1)).toEqual({ fare: 3500, reason: 'full-fare', code: null });
    expect(queryCharges(r.db, { limit: 10 }).charges).toEqual([expect.objectContaining({ amountKopecks: 7000, taps: 2 })]);
  });
});

describe('registry schema 1 → 2', () => {
  it('keeps the journal, aggregates pending per-tap charges and never charges a day charged tap by tap again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-settle-mig-'));
    dirs.push(dir);
    const old = new Database(join(dir, 'registry.sqlite'));
    old.exec(`CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE journal(device TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, token TEXT, kind TEXT NOT NULL,
        result TEXT NOT NULL, reason TEXT NOT NULL,
        fare INTEGER NOT NULL, benefit TEXT, lists TEXT NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY(device, seq)) WITHOUT ROWID;
      CREATE TABLE charges(device TEXT NOT NULL, seq INTEGER NOT NULL, token TEXT NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT,
        updated_at TEXT NOT NULL, PRIMARY KEY(device, seq));`);
    const j = old.prepare("INSERT INTO journal VALUES (?, ?, ?, ?, 'bus', 'allow', 'full-fare', 3500, NULL, '{}', '2026-11-10T10:00:00Z')");
    const c = old.prepare("INSERT INTO charges VALUES (?, ?, ?, 3500, ?, NULL, '2026-11-10T10:00:00Z')");
    j.run('bus-a', 1, '2026-11-09T10:00:00.000Z', tokenOf(1));
    c.run('bus-a', 1, tokenOf(1), 'charged');
    j.run('bus-a', 2, '2026-11-10T10:00:00.000Z', tokenOf(2));
    c.run('bus-a', 2, tokenOf(2), 'pending');
    old.close();
    const db = openRegistry(dir);
    try {
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe(String(REGISTRY_SCHEMA)); // 1 → 2 → … the latest
      expect(queryJournal(db, { limit: 10 }).entries.map((e) => [e.seq, e.serviceDay, e.settled])).toEqual([
        [1, '2026-11-09', { fareKopecks: 3500, reason: 'full-fare' }],
        [2, '2026-11-10', { fareKopecks: 3500, reason: 'full-fare' }],
      ]);
      expect(queryCharges(db, { limit: 10 }).charges.map((x) => [x.token, x.serviceDay, x.amountKopecks, x.status])).toEqual([
        [tokenOf(1), '2026-11-09', 3500, 'v1'],
        [tokenOf(2), '2026-11-10', 3500, 'pending'],
      ]);
    } finally {
      db.close();
    }
  });
});
