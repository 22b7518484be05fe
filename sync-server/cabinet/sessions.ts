import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../registry.js';
import { csrfFor, csrfMatches, type SessionLimits } from '../auth/sessions.js';

/**
 * Cardholder sessions: the console's scheme (sync-server/auth/sessions.ts) in a table of their own — a random 256-bit id
 * in the HttpOnly cookie `rc_cabinet`, only its SHA-256 stored, idle and absolute limits, the CSRF token derived from the
 * id (auth/sessions.ts csrfFor, reused). A holder's session carries the person id the handler acts for.
 */
export const CABINET_COOKIE = 'rc_cabinet';
/** 15 minutes idle, 8 hours at most. */
export const DEFAULT_HOLDER_LIMITS: SessionLimits = { idleMs: 15 * 60_000, absoluteMs: 8 * 3600_000 };

/** A signed-in cardholder, as a handler sees them. */
export interface Holder {
  personId: string;
  subject: string;
  name: string;
  esia: boolean;
  /** The session's CSRF token. */
  csrf: string;
  sessionId: string;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

export function createHolderSession(db: Db, h: Omit<Holder, 'csrf' | 'sessionId'>, now: number): string {
  const id = randomBytes(32).toString('base64url');
  db.prepare('INSERT INTO cabinet_sessions(id_hash, person_id, subject, name, esia, created_ms, seen_ms) VALUES (?,?,?,?,?,?,?)').run(
    sha256(id),
    h.personId,
    h.subject,
    h.name,
    h.esia ? 1 : 0,
    now,
    now,
  );
  return id;
}

export function endHolderSession(db: Db, id: string): void {
  db.prepare('DELETE FROM cabinet_sessions WHERE id_hash = ?').run(sha256(id));
}

/** The holder of a session id; null (and the session removed) when it expired. */
export function holderOf(db: Db, id: string, limits: SessionLimits, now: number): Holder | null {
  if (!/^[\w-]{43}$/.test(id)) return null;
  const hash = sha256(id);
  const s = db.prepare('SELECT person_id, subject, name, esia, created_ms, seen_ms FROM cabinet_sessions WHERE id_hash = ?').get(hash) as
    { person_id: string; subject: string; name: string; esia: number; created_ms: number; seen_ms: number } | undefined;
  if (!s) return null;
  if (now - s.seen_ms > limits.idleMs || now - s.created_ms > limits.absoluteMs) {
    db.prepare('DELETE FROM cabinet_sessions WHERE id_hash = ?').run(hash);
    return null;
  }
  if (now - s.seen_ms > 60_000) db.prepare('UPDATE cabinet_sessions SET seen_ms = ? WHERE id_hash = ?').run(now, hash);
  return { personId: s.person_id, subject: s.subject, name: s.name, esia: s.esia === 1, csrf: csrfFor(id), sessionId: id };
}

export const holderCsrfOk = csrfMatches;

export function pruneHolderSessions(db: Db, limits: SessionLimits, now: number): void {
  db.prepare('DELETE FROM cabinet_sessions WHERE seen_ms < ? OR created_ms < ?').run(now - limits.idleMs, now - limits.absoluteMs);
  db.prepare('DELETE FROM cabinet_logins WHERE created_ms < ?').run(now - 10 * 60_000);
}
