import type { AuditQuery, AuditRow } from '../protocol/auth-api.js';
import { maskPan } from '../protocol/token.js';
import type { Db } from './registry.js';

/**
 * The audit log (issue 12 item 2): who changed what, from where, with what result. Append-only: triggers
 * (db/migrations) abort any UPDATE or DELETE of its rows. Rows are written by the HTTP API's one audit hook
 * (every successful non-GET call on a role route, sync-server/auth/hook.ts), by the sign-in routes and by
 * the account commands of the CLI. A detail is a summary (ids, names, versions, counts), never a PAN or a
 * list of card tokens: summarize() keeps scalars, counts arrays and masks anything that looks like a card number.
 */
export interface AuditEntry {
  who: string;
  role: string | null;
  source: string;
  action: string;
  detail: Record<string, unknown>;
  result: string;
}

/** Keys whose values never go into the log (secrets, card data); an array under any key is logged as its length. */
const SECRET_KEYS = /^(password|token|tokens|pan|card|cards|secret|csrf|authorization)$/i;
const PAN_LIKE = /\d{12,19}/g;

function scalar(v: string): string {
  const s = v.length > 200 ? `${v.slice(0, 200)}…` : v;
  return s.replace(PAN_LIKE, (d) => maskPan(Buffer.from(d, 'ascii')));
}

/** A loggable summary of a request body, params or a handler's detail: one level of scalars, arrays as counts. */
export function summarize(o: unknown, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof o !== 'object' || o === null) return out;
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (Array.isArray(v)) out[`${k}Count`] = v.length;
    else if (SECRET_KEYS.test(k)) out[k] = '[redacted]';
    else if (typeof v === 'string') out[k] = scalar(v);
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) out[k] = v;
    else if (typeof v === 'object' && depth < 1) out[k] = summarize(v, depth + 1);
  }
  return out;
}

export function writeAudit(db: Db, e: AuditEntry, now = new Date()): void {
  db.prepare('INSERT INTO audit(time, who, role, source, action, detail, result) VALUES (?,?,?,?,?,?,?)').run(
    now.toISOString(),
    scalar(e.who),
    e.role,
    e.source,
    e.action,
    JSON.stringify(summarize(e.detail)),
    e.result,
  );
}

export function queryAudit(db: Db, q: Omit<AuditQuery, 'format'>): AuditRow[] {
  const where: string[] = [];
  const args: (string | number)[] = [];
  const add = (clause: string, v: string) => {
    where.push(clause);
    args.push(v);
  };
  if (q.since) add('time >= ?', q.since);
  if (q.until) add('time < ?', q.until);
  if (q.who) add('who = ?', q.who);
  if (q.action) add('lower(action) LIKE lower(?)', `%${q.action}%`); // case-insensitive on both databases, as SQLite's LIKE was
  const rows = db
    .prepare(
      `SELECT seq, time, who, role, source, action, detail, result FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`,
    )
    .all(...args, q.limit) as (Omit<AuditRow, 'detail'> & { detail: string })[];
  return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
}

const csvCell = (v: unknown): string => {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  // a cell a spreadsheet would run as a formula is quoted with a leading apostrophe
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
};

export function auditCsv(rows: readonly AuditRow[]): string {
  const head = ['seq', 'time', 'who', 'role', 'source', 'action', 'detail', 'result'] as const;
  return [head.join(','), ...rows.map((r) => head.map((h) => csvCell(r[h])).join(','))].join('\r\n') + '\r\n';
}
