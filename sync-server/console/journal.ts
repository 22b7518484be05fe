import type { JournalRow } from '../../protocol/api.js';
import type { Db } from '../registry.js';

/**
 * Journal search for the console (by device, route, effective time range, result, card token), newest first.
 * The same row as GET /v1/journal (protocol/api.ts JournalRow). Tokens only: a card typed by its number is
 * tokenised before it gets here (console/cards.ts).
 */
export interface JournalFilter {
  device?: string | undefined;
  route?: string | undefined;
  /** Effective time, inclusive / exclusive (ISO or YYYY-MM-DD). */
  from?: string | undefined;
  to?: string | undefined;
  result?: string | undefined;
  token?: string | undefined;
  /** Only these devices (a school's), when given. */
  devices?: readonly string[] | undefined;
  limit: number;
}

interface Row {
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

const COLS =
  'time, eff_ms, service_day, device, seq, token, kind, result, reason, fare, benefit, route, vehicle, direction, reader, meal, flags, lists, settled_fare, settled_reason, settle_code';

function ms(v: string): number {
  return Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
}

export function searchJournal(db: Db, f: JournalFilter): JournalRow[] {
  const conds: string[] = [];
  const args: (string | number)[] = [];
  const eq = (col: string, v: string | undefined) => {
    if (v === undefined || v === '') return;
    conds.push(`${col} = ?`);
    args.push(v);
  };
  eq('device', f.device);
  eq('route', f.route);
  eq('result', f.result);
  eq('token', f.token);
  if (f.from) {
    conds.push('eff_ms >= ?');
    args.push(ms(f.from));
  }
  if (f.to) {
    conds.push('eff_ms < ?');
    args.push(ms(f.to));
  }
  if (f.devices) {
    conds.push(`device IN (SELECT value FROM json_each(?))`);
    args.push(JSON.stringify(f.devices));
  }
  const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
  const order = f.device ? 'seq DESC' : 'eff_ms DESC, device, seq DESC';
  const rows = db.prepare(`SELECT ${COLS} FROM journal ${where} ORDER BY ${order} LIMIT ?`).all(...args, f.limit) as Row[];
  return rows.map((r) => ({
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
  }));
}
