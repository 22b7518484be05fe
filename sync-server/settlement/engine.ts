import { ErrorCode } from '../../protocol/errors.js';
import type { StopEntry, TransitEntry } from '../../protocol/lists.js';
import { RulesFile, type Tariff } from '../../protocol/rules-schema.js';
import { decodeRecords } from '../../protocol/wire/codec.js';
import { categoryTable, type CategoryTable } from '../../protocol/categories.js';
import { relaxed } from '../publisher.js';
import { jsonArrayValues, jsonPairs, probeEach, sqliteTuning } from '../db/sql.js';
import type { Db } from '../registry.js';
import { busConfig, decide, type Tap, type TokenMarks, type View } from './core.js';
import { dayBefore, dayLowerBoundMs, serviceDay, settlementOptions, type SettlementOptions } from './days.js';

/**
 * The back-office fare engine. For each card it runs all devices' taps in time
 * order (effective time, then device, then seq) through the devices' own
 * `decide`, building the card's running view (counters: quota used this period,
 * fares charged today; marks: last paid tap for the transfer window, last ride)
 * from its earlier settled taps. The result is the settled fare and reason of
 * each tap, and where the device decided otherwise an adjustment with both.
 *
 * Ingest marks (token, service day) dirty; `settleDirty` re-settles each dirty
 * card from the start of the earliest dirty day's month (quotas are monthly) and
 * writes the taps from that day on: a late upload re-settles the card's affected
 * days. The result depends on the journal and the published tariff only, never on
 * the order in which entries arrived. Entries the engine cannot settle are kept,
 * flagged with a code (settlement.unknown-route, settlement.time-out-of-range).
 *
 * Without a published tariff the back office has nothing to settle by: the
 * devices' decisions stand as settled (as before the engine existed). Entries
 * that are not bus taps (canteen meals, turnstile passes) are decided by one
 * device for one school and also settle as the device decided.
 */
export interface JournalRow {
  device: string;
  seq: number;
  token: string;
  kind: string;
  result: string;
  reason: string;
  fare: number;
  route: string | null;
  vehicle: string | null;
  flags: string;
  eff_ms: number;
  service_day: string;
  settled_fare: number | null;
  settled_reason: string | null;
  settle_code: string | null;
}

export interface SettledTap {
  device: string;
  seq: number;
  serviceDay: string;
  /** The back office's decision; null: left out of settlement (see code). */
  result: string | null;
  fareKopecks: number | null;
  reason: string | null;
  code: string | null;
}

/** The published tariff: the rules document "rules", else the first other document (by name) that has one. */
export function publishedTariff(db: Db): Tariff | null {
  const rows = db.prepare("SELECT name, doc FROM configs ORDER BY name = 'rules' DESC, name").all() as { name: string; doc: string }[];
  for (const r of rows) {
    const p = RulesFile.safeParse(JSON.parse(r.doc));
    if (p.success && p.data.tariff) return p.data.tariff;
  }
  return null;
}

/** Stop-list knowledge the device had at the tap, from its flags (`stop:<reason>`), so a refused tap settles as refused. */
function stopFromFlags(token: string, flags: string[]): StopEntry | null {
  const f = flags.find((x) => x.startsWith('stop:'));
  return f ? ({ token, reason: f.slice(5), since: '1970-01-01' } as StopEntry) : null;
}

/** Order of a card's taps: effective time, then device, then seq. */
function tapOrder(a: JournalRow, b: JournalRow): number {
  return a.eff_ms - b.eff_ms || (a.device < b.device ? -1 : a.device > b.device ? 1 : a.seq - b.seq);
}

type Put = (r: JournalRow, result: string | null, fareKopecks: number | null, reason: string | null, code: string | null) => void;

/** The replay itself: `put` is called for each tap of `writeFrom` or later, in order, with the row it settles. */
function replayRows(
  token: string,
  rows: readonly JournalRow[],
  transit: TransitEntry | null,
  tariff: Tariff | null,
  o: SettlementOptions,
  writeFrom: string,
  put: Put,
): { counters: Record<string, number>; marks: TokenMarks } {
  const sorted = [...rows].sort(tapOrder);
  const counters: Record<string, number> = {};
  let marks: TokenMarks = {};
  for (const r of sorted) {
    const keep = r.service_day >= writeFrom;
    // flagged at ingest (a wrong clock, the same card on another vehicle within a minute): stays out of settlement
    if (r.settle_code === ErrorCode.SettlementTimeOutOfRange || r.settle_code === ErrorCode.SettlementImpossibleTrip) {
      if (keep) put(r, null, null, null, r.settle_code);
      continue;
    }
    // a partner's resident check is not a trip: stored and reported, never a fare
    if (r.kind === 'partner') {
      if (keep) put(r, null, null, null, ErrorCode.SettlementNotAFare);
      continue;
    }
    if (r.kind !== 'bus' || !tariff) {
      if (keep) put(r, r.result, r.fare, r.reason, null);
      continue;
    }
    if (r.route === null || !(r.route in tariff.routes)) {
      if (keep) put(r, null, null, null, ErrorCode.SettlementUnknownRoute);
      continue;
    }
    const vehicle = r.vehicle ?? r.device;
    const tap: Tap = {
      wallTime: r.eff_ms,
      monotonicMs: 0,
      bootId: `${r.device}#${r.seq}`, // never shared: windows run on effective times across devices
      direction: null,
      card: { token, expiry: null },
      route: r.route,
      vehicle,
    };
    const stop = r.flags.includes('stop:') ? stopFromFlags(token, JSON.parse(r.flags) as string[]) : null;
    const view: View = { transit, stop, schools: {}, counters, marks, listVersions: {} };
    const d = decide(tap, view, busConfig(r.device, r.route, vehicle, tariff, o.timeZone));
    for (const a of d.counterDelta.add) counters[`${a.name}@${a.period}`] = (counters[`${a.name}@${a.period}`] ?? 0) + a.by;
    marks = d.counterDelta.marks;
    if (keep) put(r, d.result, d.fareKopecks, d.reason, null);
  }
  return { counters, marks };
}

/**
 * Settle one card's taps, in order. Pure: the same rows, entry and tariff give the same result.
 * `writeFrom`: only taps of this service day or later are returned in `settled` (earlier ones only build the view).
 * Also returns the card's view after its last tap (counters and marks, as a device would hold them).
 */
export function replayCard(
  token: string,
  rows: readonly JournalRow[],
  transit: TransitEntry | null,
  tariff: Tariff | null,
  o: SettlementOptions,
  writeFrom = '',
): { settled: SettledTap[]; counters: Record<string, number>; marks: TokenMarks } {
  const out: SettledTap[] = [];
  const { counters, marks } = replayRows(token, rows, transit, tariff, o, writeFrom, (r, result, fareKopecks, reason, code) =>
    out.push({ device: r.device, seq: r.seq, serviceDay: r.service_day, result, fareKopecks, reason, code }),
  );
  return { settled: out, counters, marks };
}

export interface SettleReport {
  cards: number;
  taps: number;
  adjustments: number;
}

/** A card to settle from a service day on. */
interface DirtyCard {
  token: string;
  day: string;
}

/** The journal columns settlement writes, for one tap: [settled_fare, settled_reason, settle_code, device, seq]. */
type JournalWrite = [number | null, string | null, string | null, string, number];

/** How many cards `settleDirty` settles per transaction (one bulk read per kind, the journal written in key order). */
const BULK_CARDS = 20_000;
/** Page cache (KiB) while `settleDirty` runs: a day of a large fleet's journal and its indexes (about 400 MB per million taps). */
const BULK_CACHE_KIB = 1_048_576;
/** How many cards a time slice takes at a time before it looks at the clock again. */
const SLICE_CARDS = 32;

/**
 * Settlement works in batches of cards: one query loads all their taps of the affected days (and one their transit
 * entries, one their day totals), each card is replayed in memory, and the batch's journal updates are written in
 * the journal's key order (device, seq), so a page of the journal is written once per batch, not once per card.
 * `settleDirty` settles everything in large batches (the back-office run, the bench); `settleSlice` settles for a
 * few milliseconds in one transaction and stops, so the server's event loop (journal acks, HTTP) never waits longer.
 */
export class Settlement {
  readonly opts: SettlementOptions;
  private readonly st;
  /** `settleSlice` walks the dirty cards in token order from here (and wraps around), so a backlog is not rescanned per slice. */
  private cursor = '';
  constructor(
    private readonly db: Db,
    opts: Partial<SettlementOptions> = {},
  ) {
    this.opts = settlementOptions(opts);
    this.st = {
      dirtyAfter: db.prepare('SELECT token, min(day) AS day FROM settle_dirty WHERE token > ? GROUP BY token ORDER BY token LIMIT ?'),
      anyDirty: db.prepare('SELECT 1 FROM settle_dirty LIMIT 1').pluck(),
      undirty: db.prepare('DELETE FROM settle_dirty WHERE token = ?'),
      // [[token, lower bound of eff_ms], …]: every tap of the batch's cards that settlement reads
      rows: db.prepare(
        `SELECT j.device, j.seq, j.token, j.kind, j.result, j.reason, j.fare, j.route, j.vehicle, j.flags, j.eff_ms, j.service_day,
           j.settled_fare, j.settled_reason, j.settle_code
         ${probeEach(db, jsonPairs(db, 'bigint'), 'b', 'journal', 'j', 'j.token = b.p0 AND j.eff_ms >= b.p1')}`,
      ),
      // [token, …]
      transit: db.prepare(`SELECT e.token, e.rec ${probeEach(db, jsonArrayValues(db), 'b', 'entries', 'e', "e.scope = 'transit' AND e.token = b.value")}`),
      // [[token, first day], …]
      totals: db.prepare(
        `SELECT t.token, t.service_day, t.amount, t.closed ${probeEach(db, jsonPairs(db, 'text'), 'b', 'day_totals', 't', 't.token = b.p0 AND t.service_day >= b.p1')}`,
      ),
      set: db.prepare('UPDATE journal SET settled_fare = ?, settled_reason = ?, settle_code = ? WHERE device = ? AND seq = ?'),
      delAdj: db.prepare("DELETE FROM adjustments WHERE token = ? AND service_day >= ? AND kind = 'tap'"),
      addAdj: db.prepare(
        `INSERT INTO adjustments(token, service_day, device, seq, kind, device_fare, device_reason, settled_fare, settled_reason, created_at)
         VALUES (?,?,?,?,?,?,?,?,?,?)`,
      ),
      putTotal: db.prepare(
        `INSERT INTO day_totals(token, service_day, amount, taps, first_ms, first_device, first_seq) VALUES (?,?,?,?,?,?,?)
         ON CONFLICT(token, service_day) DO UPDATE SET amount = excluded.amount, taps = excluded.taps, first_ms = excluded.first_ms,
           first_device = excluded.first_device, first_seq = excluded.first_seq`,
      ),
      charge: db.prepare('SELECT seq, amount, status FROM charges WHERE token = ? AND service_day = ?'),
      chargeFix: db
        .prepare("SELECT CAST(coalesce(sum(settled_fare - device_fare), 0) AS BIGINT) FROM adjustments WHERE token = ? AND service_day = ? AND kind = 'charge'")
        .pluck(),
      newCharge: db.prepare(
        "INSERT INTO charges(token, service_day, amount, taps, status, created_at, updated_at) VALUES (?,?,?,?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
      ),
      updCharge: db.prepare('UPDATE charges SET amount = ?, taps = ?, updated_at = ? WHERE seq = ?'),
      openDays: db.prepare(
        `SELECT t.token, t.service_day, t.amount, t.taps FROM day_totals t WHERE t.closed = 0 AND t.service_day < ?
         AND NOT EXISTS (SELECT 1 FROM settle_dirty d WHERE d.token = t.token)
         ORDER BY t.service_day, t.first_ms, t.first_device, t.first_seq LIMIT ?`,
      ),
      insCharge: db.prepare(
        "INSERT INTO charges(token, service_day, amount, taps, status, created_at, updated_at) VALUES (?,?,?,?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
      ),
      close: db.prepare('UPDATE day_totals SET closed = 1 WHERE token = ? AND service_day = ?'),
    };
  }

  /**
   * Settle every dirty (token, day); at most `limit` cards per call (the rest stay dirty for the next call).
   * One transaction, in batches of BULK_CARDS cards, with a page cache large enough that each page of the journal
   * is written once, at the commit (the server settles in slices instead, see settleSlice).
   */
  settleDirty(now = new Date(), limit = 1_000_000): SettleReport {
    const tariff = publishedTariff(this.db);
    const rep: SettleReport = { cards: 0, taps: 0, adjustments: 0 };
    const at = now.toISOString();
    let cache: number | undefined;
    sqliteTuning(this.db, (db) => {
      cache = db.pragma('cache_size', { simple: true }) as number;
      db.pragma(`cache_size = ${Math.min(cache, -BULK_CACHE_KIB)}`);
    });
    try {
      this.db.transaction(() => {
        let after = '';
        while (rep.cards < limit) {
          const dirty = this.st.dirtyAfter.all(after, Math.min(BULK_CARDS, limit - rep.cards)) as DirtyCard[];
          if (dirty.length === 0) break;
          this.settleBatch(dirty, tariff, at, rep);
          after = dirty[dirty.length - 1]!.token;
        }
      })();
    } finally {
      if (cache !== undefined) this.db.pragma(`cache_size = ${cache}`);
    }
    return rep;
  }

  /**
   * Settle dirty cards for about `budgetMs` (at least one small batch), in one transaction, and stop.
   * Its commit has no fsync of its own (synchronous = NORMAL for it): a slice only derives from the journal, and a
   * slice lost to a power cut is lost whole (its dirty marks with it), so those cards are settled again. The next
   * synced commit (ingest's group commit, any other write) or checkpoint puts it on disk. Thousands of slices used
   * to cost an fsync each (54 s to settle 200,000 new cards). Returns whether dirty cards are left.
   */
  settleSlice(now = new Date(), budgetMs = 5): { report: SettleReport; more: boolean } {
    const t0 = performance.now();
    const rep: SettleReport = { cards: 0, taps: 0, adjustments: 0 };
    relaxed(this.db, () =>
      this.db.transaction(() => {
        const tariff = publishedTariff(this.db);
        const at = now.toISOString();
        let wrapped = false;
        do {
          const dirty = this.st.dirtyAfter.all(this.cursor, SLICE_CARDS) as DirtyCard[];
          if (dirty.length === 0) {
            if (wrapped || this.cursor === '') break;
            this.cursor = ''; // dirty cards before the cursor came in meanwhile: go round once more
            wrapped = true;
            continue;
          }
          this.settleBatch(dirty, tariff, at, rep);
          this.cursor = dirty[dirty.length - 1]!.token;
        } while (performance.now() - t0 < budgetMs);
      })(),
    );
    return { report: rep, more: this.st.anyDirty.get() !== undefined };
  }

  /** Re-settle one card from a service day on (e.g. after a tariff change). */
  resettle(token: string, fromDay: string, now = new Date()): SettleReport {
    const rep: SettleReport = { cards: 0, taps: 0, adjustments: 0 };
    this.db.transaction(() => this.settleBatch([{ token, day: fromDay }], publishedTariff(this.db), now.toISOString(), rep, false))();
    return rep;
  }

  private cats: { tariff: Tariff | null; table: CategoryTable } | null = null;
  /** The published transit entries of these cards; their benefit categories' wire ids are the published tariff's. */
  private transits(tokens: string[], tariff: Tariff | null): Map<string, TransitEntry> {
    const out = new Map<string, TransitEntry>();
    if (this.cats?.tariff !== tariff) this.cats = { tariff, table: categoryTable([tariff?.categories]) };
    for (const { token, rec } of this.st.transit.all(JSON.stringify(tokens)) as { token: string; rec: Buffer }[]) {
      const e = decodeRecords('transit', rec, false, this.cats.table).entries[0] as TransitEntry | undefined;
      if (e) out.set(token, e);
    }
    return out;
  }

  /**
   * Settle these cards (distinct tokens), each from its day on: from the start of that day's month (monthly quotas),
   * with the day before it for windows and marks. `undirty`: their dirty marks are cleared.
   */
  private settleBatch(cards: readonly DirtyCard[], tariff: Tariff | null, at: string, rep: SettleReport, undirty = true): void {
    const fromOf = new Map<string, string>();
    const bounds: [string, number][] = [];
    for (const c of cards) {
      fromOf.set(c.token, c.day);
      bounds.push([c.token, dayLowerBoundMs(dayBefore(`${c.day.slice(0, 7)}-01`))]);
    }
    const byToken = new Map<string, JournalRow[]>();
    for (const r of this.st.rows.all(JSON.stringify(bounds)) as JournalRow[]) {
      const list = byToken.get(r.token);
      if (list) list.push(r);
      else byToken.set(r.token, [r]);
    }
    const transits = this.transits(
      cards.map((c) => c.token),
      tariff,
    );
    // a card none of whose taps from that day on was settled before has no adjustments or day totals yet
    const fresh = new Set<string>();
    const seen: [string, string][] = [];
    for (const c of cards) {
      const rows = byToken.get(c.token) ?? [];
      if (rows.every((r) => r.service_day < c.day || (r.settled_reason === null && r.settle_code === null))) fresh.add(c.token);
      else seen.push([c.token, c.day]);
    }
    const totals = new Map<string, { amount: number; closed: number }>();
    if (seen.length > 0) {
      for (const t of this.st.totals.all(JSON.stringify(seen)) as { token: string; service_day: string; amount: number; closed: number }[]) {
        totals.set(`${t.token} ${t.service_day}`, { amount: t.amount, closed: t.closed });
      }
    }
    const writes: JournalWrite[] = [];
    for (const c of cards) {
      this.settleCard(c.token, c.day, byToken.get(c.token) ?? [], transits.get(c.token) ?? null, tariff, at, rep, fresh.has(c.token), totals, writes);
      if (undirty) this.st.undirty.run(c.token);
    }
    // in the journal's key order: each page once, in order
    writes.sort((a, b) => (a[3] < b[3] ? -1 : a[3] > b[3] ? 1 : a[4] - b[4]));
    for (const w of writes) this.st.set.run(...w);
  }

  private settleCard(
    token: string,
    fromDay: string,
    rows: readonly JournalRow[],
    transit: TransitEntry | null,
    tariff: Tariff | null,
    at: string,
    rep: SettleReport,
    fresh: boolean,
    totals: ReadonlyMap<string, { amount: number; closed: number }>,
    writes: JournalWrite[],
  ): void {
    if (!fresh) this.st.delAdj.run(token, fromDay);
    const days = new Map<string, { amount: number; taps: number; first: { device: string; seq: number; ms: number } }>();
    const settledDays = new Map<string, { device: string; seq: number; ms: number }>(); // each day's first settled tap
    replayRows(token, rows, transit, tariff, this.opts, fromDay, (r, result, fareKopecks, reason, code) => {
      if (r.settled_fare !== fareKopecks || r.settled_reason !== reason || r.settle_code !== code) writes.push([fareKopecks, reason, code, r.device, r.seq]);
      rep.taps++;
      if (!settledDays.has(r.service_day)) settledDays.set(r.service_day, { device: r.device, seq: r.seq, ms: 0 });
      if (fareKopecks === null) return;
      if (fareKopecks !== r.fare || reason !== r.reason) {
        this.st.addAdj.run(token, r.service_day, r.device, r.seq, 'tap', r.fare, r.reason, fareKopecks, reason, at);
        rep.adjustments++;
      }
      if (result !== 'allow') return;
      const d = days.get(r.service_day);
      if (!d) days.set(r.service_day, { amount: fareKopecks, taps: 1, first: { device: r.device, seq: r.seq, ms: r.eff_ms } });
      else {
        d.amount += fareKopecks;
        d.taps++;
      }
    });
    const before = (day: string) => (fresh ? undefined : totals.get(`${token} ${day}`));
    for (const [day, d] of [...days]) this.putDay(token, day, d.amount, d.taps, d.first, at, rep, before(day));
    // days that no longer have any settled tap (e.g. now flagged) keep a zero total
    if (!fresh) {
      for (const [day, first] of settledDays) {
        const b = before(day);
        if (!days.has(day) && b) this.putDay(token, day, 0, 0, first, at, rep, b);
      }
    }
    rep.cards++;
  }

  /** The day's total; for a day already charged, a change is recorded as a charge adjustment (or folded into a pending charge). */
  private putDay(
    token: string,
    day: string,
    amount: number,
    taps: number,
    first: { device: string; seq: number; ms: number },
    at: string,
    rep: SettleReport,
    before: { amount: number; closed: number } | undefined,
  ): void {
    this.st.putTotal.run(token, day, amount, taps, first.ms, first.device, first.seq);
    if (before?.closed !== 1) return; // charges are created when the day closes
    const c = this.st.charge.get(token, day) as { seq: number; amount: number; status: string } | undefined;
    if (!c && amount > 0) {
      // a closed day that had nothing to charge: its first charge, late
      this.st.newCharge.run(token, day, amount, taps, at, at);
      return;
    }
    if (!c || c.status === 'v1') return;
    if (c.status === 'pending') {
      if (c.amount !== amount) this.st.updCharge.run(amount, taps, at, c.seq);
      return;
    }
    const accounted = c.amount + (this.st.chargeFix.get(token, day) as number);
    if (accounted !== amount) {
      this.st.addAdj.run(token, day, null, null, 'charge', accounted, c.status, amount, 're-settled', at);
      rep.adjustments++;
    }
  }

  /** The service day of an instant (the current one: `serviceDay(Date.now())`). */
  serviceDay(ms: number): string {
    return serviceDay(ms, this.opts);
  }

  /**
   * Close every service day before the current one: one charge per card and day with
   * a settled amount above zero, in the order of the day's first tap. Returns how many were created.
   */
  closeDays(now = new Date()): number {
    let created = 0;
    this.db.transaction(() => (created = this.closeSome(now, -1, Infinity).created))();
    return created;
  }

  /** Close days as `closeDays` does for about `budgetMs`, in one transaction. */
  closeSlice(now = new Date(), budgetMs = 5): { created: number; more: boolean } {
    return this.db.transaction(() => this.closeSome(now, 256, budgetMs))();
  }

  /** Close open days, `chunk` at a time in the order of their first tap (index day_totals_close), until none is left or the time is up. */
  private closeSome(now: Date, chunk: number, budgetMs: number): { created: number; more: boolean } {
    const t0 = performance.now();
    const today = this.serviceDay(now.getTime());
    const at = now.toISOString();
    let created = 0;
    for (;;) {
      const open = this.st.openDays.all(today, chunk) as { token: string; service_day: string; amount: number; taps: number }[];
      for (const d of open) {
        if (d.amount > 0) created += this.st.insCharge.run(d.token, d.service_day, d.amount, d.taps, at, at).changes;
        this.st.close.run(d.token, d.service_day);
      }
      if (chunk < 0 || open.length < chunk) return { created, more: false };
      if (performance.now() - t0 >= budgetMs) return { created, more: true };
    }
  }
}
