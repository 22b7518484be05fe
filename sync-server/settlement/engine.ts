import { ErrorCode } from '../../protocol/errors.js';
import type { StopEntry, TransitEntry } from '../../protocol/lists.js';
import { RulesFile, type Tariff } from '../../protocol/rules-schema.js';
import { decodeRecords } from '../../protocol/wire/codec.js';
import { categoryTable, type CategoryTable } from '../../protocol/categories.js';
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
  const sorted = [...rows].sort((a, b) => a.eff_ms - b.eff_ms || (a.device < b.device ? -1 : a.device > b.device ? 1 : a.seq - b.seq));
  const counters: Record<string, number> = {};
  let marks: TokenMarks = {};
  const out: SettledTap[] = [];
  for (const r of sorted) {
    const keep = r.service_day >= writeFrom;
    const put = (result: string | null, fareKopecks: number | null, reason: string | null, code: string | null) => {
      if (keep) out.push({ device: r.device, seq: r.seq, serviceDay: r.service_day, result, fareKopecks, reason, code });
    };
    // flagged at ingest (a wrong clock, the same card on another vehicle within a minute): stays out of settlement
    if (r.settle_code === ErrorCode.SettlementTimeOutOfRange || r.settle_code === ErrorCode.SettlementImpossibleTrip) {
      put(null, null, null, r.settle_code);
      continue;
    }
    // a partner's resident check is not a trip: stored and reported, never a fare
    if (r.kind === 'partner') {
      put(null, null, null, ErrorCode.SettlementNotAFare);
      continue;
    }
    if (r.kind !== 'bus' || !tariff) {
      put(r.result, r.fare, r.reason, null);
      continue;
    }
    if (r.route === null || !(r.route in tariff.routes)) {
      put(null, null, null, ErrorCode.SettlementUnknownRoute);
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
    put(d.result, d.fareKopecks, d.reason, null);
  }
  return { settled: out, counters, marks };
}

export interface SettleReport {
  cards: number;
  taps: number;
  adjustments: number;
}

export class Settlement {
  readonly opts: SettlementOptions;
  private readonly st;
  constructor(
    private readonly db: Db,
    opts: Partial<SettlementOptions> = {},
  ) {
    this.opts = settlementOptions(opts);
    this.st = {
      dirty: db.prepare('SELECT token, min(day) AS day FROM settle_dirty GROUP BY token ORDER BY token LIMIT ?'),
      undirty: db.prepare('DELETE FROM settle_dirty WHERE token = ?'),
      rows: db.prepare(
        `SELECT device, seq, token, kind, result, reason, fare, route, vehicle, flags, eff_ms, service_day, settled_fare, settled_reason, settle_code
         FROM journal WHERE token = ? AND eff_ms >= ?`,
      ),
      transit: db.prepare("SELECT rec FROM entries WHERE scope = 'transit' AND token = ?").pluck(),
      set: db.prepare('UPDATE journal SET settled_fare = ?, settled_reason = ?, settle_code = ? WHERE device = ? AND seq = ?'),
      delAdj: db.prepare("DELETE FROM adjustments WHERE token = ? AND service_day >= ? AND kind = 'tap'"),
      addAdj: db.prepare(
        `INSERT INTO adjustments(token, service_day, device, seq, kind, device_fare, device_reason, settled_fare, settled_reason, created_at)
         VALUES (?,?,?,?,?,?,?,?,?,?)`,
      ),
      total: db.prepare('SELECT amount, closed FROM day_totals WHERE token = ? AND service_day = ?'),
      putTotal: db.prepare(
        `INSERT INTO day_totals(token, service_day, amount, taps, first_ms, first_device, first_seq) VALUES (?,?,?,?,?,?,?)
         ON CONFLICT(token, service_day) DO UPDATE SET amount = excluded.amount, taps = excluded.taps, first_ms = excluded.first_ms,
           first_device = excluded.first_device, first_seq = excluded.first_seq`,
      ),
      charge: db.prepare('SELECT seq, amount, status FROM charges WHERE token = ? AND service_day = ?'),
      chargeFix: db
        .prepare("SELECT coalesce(sum(settled_fare - device_fare), 0) FROM adjustments WHERE token = ? AND service_day = ? AND kind = 'charge'")
        .pluck(),
      newCharge: db.prepare(
        "INSERT OR IGNORE INTO charges(token, service_day, amount, taps, status, created_at, updated_at) VALUES (?,?,?,?, 'pending', ?, ?)",
      ),
      updCharge: db.prepare('UPDATE charges SET amount = ?, taps = ?, updated_at = ? WHERE seq = ?'),
    };
  }

  /** Settle every dirty (token, day); `limit` cards per call (the rest stay dirty for the next call). */
  settleDirty(now = new Date(), limit = 1_000_000): SettleReport {
    const tariff = publishedTariff(this.db);
    const rep: SettleReport = { cards: 0, taps: 0, adjustments: 0 };
    const dirty = this.st.dirty.all(limit) as { token: string; day: string }[];
    const at = now.toISOString();
    const batch = (part: { token: string; day: string }[]) =>
      this.db.transaction(() => {
        for (const d of part) {
          this.settleToken(d.token, d.day, tariff, at, rep);
          this.st.undirty.run(d.token);
        }
      })();
    for (let i = 0; i < dirty.length; i += 2000) batch(dirty.slice(i, i + 2000));
    return rep;
  }

  /** Re-settle one card from a service day on (e.g. after a tariff change). */
  resettle(token: string, fromDay: string, now = new Date()): SettleReport {
    const rep: SettleReport = { cards: 0, taps: 0, adjustments: 0 };
    this.db.transaction(() => this.settleToken(token, fromDay, publishedTariff(this.db), now.toISOString(), rep))();
    return rep;
  }

  private cats: { tariff: Tariff | null; table: CategoryTable } | null = null;
  /** The published transit entry; its benefit categories' wire ids are the published tariff's. */
  private transit(token: string, tariff: Tariff | null): TransitEntry | null {
    const rec = this.st.transit.get(token) as Buffer | undefined;
    if (!rec) return null;
    if (this.cats?.tariff !== tariff) this.cats = { tariff, table: categoryTable([tariff?.categories]) };
    return (decodeRecords('transit', rec, false, this.cats.table).entries[0] as TransitEntry | undefined) ?? null;
  }

  private settleToken(token: string, fromDay: string, tariff: Tariff | null, at: string, rep: SettleReport): void {
    // from the start of the dirty day's month (monthly quotas), with the day before it for windows and marks
    const monthStart = `${fromDay.slice(0, 7)}-01`;
    const rows = this.st.rows.all(token, dayLowerBoundMs(dayBefore(monthStart))) as JournalRow[];
    const byKey = new Map(rows.map((r) => [`${r.device}#${r.seq}`, r]));
    const { settled } = replayCard(token, rows, this.transit(token, tariff), tariff, this.opts, fromDay);
    // a card none of whose taps from that day on was settled before has no adjustments or day totals yet
    const fresh = rows.every((r) => r.service_day < fromDay || (r.settled_reason === null && r.settle_code === null));
    if (!fresh) this.st.delAdj.run(token, fromDay);
    const days = new Map<string, { amount: number; taps: number; first: SettledTap & { ms: number } }>();
    for (const s of settled) {
      const r = byKey.get(`${s.device}#${s.seq}`)!;
      if (r.settled_fare !== s.fareKopecks || r.settled_reason !== s.reason || r.settle_code !== s.code) {
        this.st.set.run(s.fareKopecks, s.reason, s.code, s.device, s.seq);
      }
      rep.taps++;
      if (s.fareKopecks === null) continue;
      if (s.fareKopecks !== r.fare || s.reason !== r.reason) {
        this.st.addAdj.run(token, s.serviceDay, s.device, s.seq, 'tap', r.fare, r.reason, s.fareKopecks, s.reason, at);
        rep.adjustments++;
      }
      if (s.result !== 'allow') continue;
      const d = days.get(s.serviceDay);
      if (!d) days.set(s.serviceDay, { amount: s.fareKopecks, taps: 1, first: { ...s, ms: r.eff_ms } });
      else {
        d.amount += s.fareKopecks;
        d.taps++;
      }
    }
    for (const [day, d] of [...days]) this.putDay(token, day, d.amount, d.taps, d.first, at, rep, fresh);
    // days that no longer have any settled tap (e.g. now flagged) keep a zero total
    for (const s of settled) {
      if (!fresh && !days.has(s.serviceDay) && this.st.total.get(token, s.serviceDay)) {
        days.set(s.serviceDay, { amount: 0, taps: 0, first: { ...s, ms: 0 } });
        this.putDay(token, s.serviceDay, 0, 0, { ...s, ms: 0 }, at, rep);
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
    first: SettledTap & { ms: number },
    at: string,
    rep: SettleReport,
    fresh = false,
  ): void {
    const before = fresh ? undefined : (this.st.total.get(token, day) as { amount: number; closed: number } | undefined);
    this.st.putTotal.run(token, day, amount, taps, first.ms, first.device, first.seq);
    if (before?.closed !== 1) return; // charges are created when the day closes
    const c = this.st.charge.get(token, day) as { seq: number; amount: number; status: string } | undefined;
    if (!c && before?.closed === 1 && amount > 0) {
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
    const today = this.serviceDay(now.getTime());
    const at = now.toISOString();
    const open = this.db
      .prepare(
        `SELECT t.token, t.service_day, t.amount, t.taps FROM day_totals t WHERE t.closed = 0 AND t.service_day < ?
         AND NOT EXISTS (SELECT 1 FROM settle_dirty d WHERE d.token = t.token)
         ORDER BY t.service_day, t.first_ms, t.first_device, t.first_seq`,
      )
      .all(today) as { token: string; service_day: string; amount: number; taps: number }[];
    const ins = this.db.prepare(
      "INSERT OR IGNORE INTO charges(token, service_day, amount, taps, status, created_at, updated_at) VALUES (?,?,?,?, 'pending', ?, ?)",
    );
    const close = this.db.prepare('UPDATE day_totals SET closed = 1 WHERE token = ? AND service_day = ?');
    let created = 0;
    this.db.transaction(() => {
      for (const d of open) {
        if (d.amount > 0) created += ins.run(d.token, d.service_day, d.amount, d.taps, at, at).changes;
        close.run(d.token, d.service_day);
      }
    })();
    return created;
  }
}
