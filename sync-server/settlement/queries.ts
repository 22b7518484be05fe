import type { Db } from '../registry.js';

/**
 * The journal and charging as the operator reads them (HTTP API, rc-sync-server
 * journal / charging list). Tokens only, never a PAN.
 */

/** One journal entry with both decisions: the device's (reason, fareKopecks) and the back office's (settled). */
export interface JournalView {
  time: string;
  effectiveTime: string;
  serviceDay: string;
  device: string;
  seq: number;
  token: string | null;
  kind: string;
  result: string;
  reason: string;
  fareKopecks: number;
  /** Same as fareKopecks (the name of earlier versions). */
  fare: number;
  benefit: string | null;
  route: string | null;
  vehicle: string | null;
  direction: string | null;
  reader: string | null;
  meal: string | null;
  flags: string[];
  lists: Record<string, number>;
  /** The back office's decision; null while not settled yet or when left out (see `flagged`). */
  settled: { fareKopecks: number; reason: string } | null;
  /** Why the entry is left out of settlement (an error code: settlement.unknown-route, settlement.time-out-of-range), else null. */
  flagged: string | null;
}

/** A journal row as stored (the columns of JOURNAL_COLS). */
export interface JournalDbRow {
  time: string;
  eff_ms: number;
  service_day: string;
  device: string;
  seq: number;
  token: string | null;
  kind: string;
  result: string;
  reason: string;
  fare: number;
  benefit: string | null;
  route: string | null;
  vehicle: string | null;
  direction: string | null;
  reader: string | null;
  meal: string | null;
  flags: string;
  lists: string;
  settled_fare: number | null;
  settled_reason: string | null;
  settle_code: string | null;
}

export const JOURNAL_COLS =
  'time, eff_ms, service_day, device, seq, token, kind, result, reason, fare, benefit, route, vehicle, direction, reader, meal, flags, lists, ' +
  'settled_fare, settled_reason, settle_code';

export interface JournalQuery {
  device?: string | undefined;
  token?: string | undefined;
  /** Only entries left out of settlement. */
  flagged?: boolean | undefined;
  limit: number;
}

/**
 * `WHERE col = ? AND …` for the filters that are given (column names are ours, never input), plus fixed
 * conditions with their own arguments (`eff_ms >= ?`, `settle_code IS NOT NULL`).
 */
export function whereEqual(
  filters: Record<string, string | undefined>,
  extra: readonly { cond: string; args?: readonly (string | number)[] }[] = [],
): { sql: string; args: (string | number)[] } {
  const given = Object.entries(filters).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '');
  const conds = [...given.map(([col]) => `${col} = ?`), ...extra.map((e) => e.cond)];
  return { sql: conds.length ? `WHERE ${conds.join(' AND ')}` : '', args: [...given.map(([, v]) => v), ...extra.flatMap((e) => e.args ?? [])] };
}

/** The view of a stored journal row: both decisions, flags and list versions parsed. */
export function journalView(r: JournalDbRow): JournalView {
  return {
    time: r.time,
    effectiveTime: new Date(r.eff_ms).toISOString(),
    serviceDay: r.service_day,
    device: r.device,
    seq: r.seq,
    token: r.token,
    kind: r.kind,
    result: r.result,
    reason: r.reason,
    fareKopecks: r.fare,
    fare: r.fare,
    benefit: r.benefit,
    route: r.route,
    vehicle: r.vehicle,
    direction: r.direction,
    reader: r.reader,
    meal: r.meal,
    flags: JSON.parse(r.flags) as string[],
    lists: JSON.parse(r.lists) as Record<string, number>,
    settled: r.settled_fare !== null && r.settled_reason !== null ? { fareKopecks: r.settled_fare, reason: r.settled_reason } : null,
    flagged: r.settle_code,
  };
}

export function queryJournal(db: Db, q: JournalQuery): { entries: JournalView[] } {
  const w = whereEqual({ device: q.device, token: q.token }, q.flagged ? [{ cond: 'settle_code IS NOT NULL' }] : []);
  const order = q.device ? 'seq' : q.token ? 'eff_ms, device, seq' : 'received_at, device, seq';
  const rows = db.prepare(`SELECT ${JOURNAL_COLS} FROM journal ${w.sql} ORDER BY ${order} LIMIT ?`).all(...w.args, q.limit) as JournalDbRow[];
  return { entries: rows.map(journalView) };
}

/** One aggregated charge: a card's settled fares of one service day. */
export interface ChargeView {
  token: string;
  serviceDay: string;
  amountKopecks: number;
  taps: number;
  /** pending | charged | declined | repaid | v1 (charged tap by tap before aggregation) */
  status: string;
  reason: string | null;
}

export function queryCharges(db: Db, q: { token?: string | undefined; status?: string | undefined; limit: number }): { charges: ChargeView[] } {
  const w = whereEqual({ token: q.token, status: q.status });
  const rows = db
    .prepare(`SELECT token, service_day AS "serviceDay", amount AS "amountKopecks", taps, status, reason FROM charges ${w.sql} ORDER BY seq LIMIT ?`)
    .all(...w.args, q.limit) as ChargeView[];
  return { charges: rows };
}

/** One difference between a device's decision and the back office's (kind tap), or a re-settled day already charged (kind charge). */
export interface AdjustmentView {
  token: string;
  serviceDay: string;
  device: string | null;
  seq: number | null;
  kind: 'tap' | 'charge';
  deviceDecision: { fareKopecks: number; reason: string | null };
  settled: { fareKopecks: number; reason: string | null };
}

export function queryAdjustments(db: Db, q: { token?: string | undefined; limit: number }): { adjustments: AdjustmentView[] } {
  const w = whereEqual({ token: q.token });
  const rows = db
    .prepare(
      `SELECT token, service_day, device, seq, kind, device_fare, device_reason, settled_fare, settled_reason FROM adjustments
       ${w.sql} ORDER BY token, service_day, device NULLS FIRST, seq NULLS FIRST LIMIT ?`, // a charge adjustment (no device) first, as SQLite sorts NULLs
    )
    .all(...w.args, q.limit) as {
    token: string;
    service_day: string;
    device: string | null;
    seq: number | null;
    kind: 'tap' | 'charge';
    device_fare: number;
    device_reason: string | null;
    settled_fare: number;
    settled_reason: string | null;
  }[];
  return {
    adjustments: rows.map((r) => ({
      token: r.token,
      serviceDay: r.service_day,
      device: r.device,
      seq: r.seq,
      kind: r.kind,
      deviceDecision: { fareKopecks: r.device_fare, reason: r.device_reason },
      settled: { fareKopecks: r.settled_fare, reason: r.settled_reason },
    })),
  };
}
