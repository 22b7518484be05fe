import type { JournalRow } from '../../protocol/api.js';
import { jsonArrayValues } from '../db/sql.js';
import type { Db } from '../registry.js';
import { JOURNAL_COLS, journalView, whereEqual, type JournalDbRow } from '../settlement/queries.js';

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

function ms(v: string): number {
  return Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
}

export function searchJournal(db: Db, f: JournalFilter): JournalRow[] {
  const w = whereEqual({ device: f.device, route: f.route, result: f.result, token: f.token }, [
    ...(f.from ? [{ cond: 'eff_ms >= ?', args: [ms(f.from)] }] : []),
    ...(f.to ? [{ cond: 'eff_ms < ?', args: [ms(f.to)] }] : []),
    ...(f.devices ? [{ cond: `device IN (${jsonArrayValues(db)})`, args: [JSON.stringify(f.devices)] }] : []),
  ]);
  const order = f.device ? 'seq DESC' : 'eff_ms DESC, device, seq DESC';
  const rows = db.prepare(`SELECT ${JOURNAL_COLS} FROM journal ${w.sql} ORDER BY ${order} LIMIT ?`).all(...w.args, f.limit) as JournalDbRow[];
  return rows.map(journalView);
}
