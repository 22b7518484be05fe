import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../registry.js';
import { scopeOf, type Principal } from './schema.js';

/**
 * Console sessions: the cookie holds a random 256-bit id, the registry only its SHA-256. A session ends
 * after `idleMs` without a request or `absoluteMs` after sign-in, whichever comes first, at sign-out, and
 * when its user is disabled or gets a new password.
 *
 * CSRF: the synchronizer token of a session is derived from its id (SHA-256 of a label and the id), so it is
 * the same for the whole session, never stored, and useless without the cookie it belongs to.
 */
export const SESSION_COOKIE = 'rc_session';
export interface SessionLimits {
  idleMs: number;
  absoluteMs: number;
}
export const DEFAULT_SESSION_LIMITS: SessionLimits = { idleMs: 30 * 60_000, absoluteMs: 12 * 3600_000 };

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

export function csrfFor(sessionId: string): string {
  return createHash('sha256').update('rc-csrf\0', 'utf8').update(sessionId, 'utf8').digest('base64url');
}

export function csrfMatches(sessionId: string, presented: string | undefined): boolean {
  if (!presented) return false;
  const want = Buffer.from(csrfFor(sessionId));
  const got = Buffer.from(presented);
  return got.length === want.length && timingSafeEqual(got, want);
}

export function createSession(db: Db, user: string, now = Date.now()): string {
  const id = randomBytes(32).toString('base64url');
  db.prepare('INSERT INTO sessions(id_hash, "user", created_ms, seen_ms) VALUES (?,?,?,?)').run(sha256(id), user, now, now);
  return id;
}

export function endSession(db: Db, id: string): void {
  db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(sha256(id));
}

/** The signed-in user of a session id; null (and the session removed) when it expired, or its user is gone or disabled. */
export function sessionPrincipal(db: Db, id: string, limits: SessionLimits, now = Date.now()): Principal | null {
  if (!/^[\w-]{43}$/.test(id)) return null;
  const h = sha256(id);
  const s = db
    .prepare(
      `SELECT s.created_ms, s.seen_ms, u.name, u.role, u.school, u.carrier, u.disabled_at FROM sessions s JOIN users u ON u.name = s."user" WHERE s.id_hash = ?`,
    )
    .get(h) as
    | { created_ms: number; seen_ms: number; name: string; role: Principal['role']; school: string | null; carrier: string | null; disabled_at: string | null }
    | undefined;
  if (!s) return null;
  if (s.disabled_at !== null || now - s.seen_ms > limits.idleMs || now - s.created_ms > limits.absoluteMs) {
    db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(h);
    return null;
  }
  // the idle clock restarts on use (written at most once a minute)
  if (now - s.seen_ms > 60_000) db.prepare('UPDATE sessions SET seen_ms = ? WHERE id_hash = ?').run(now, h);
  return { kind: 'user', name: s.name, role: s.role, ...scopeOf(s) };
}

/** Remove expired sessions (at start and now and then). */
export function pruneSessions(db: Db, limits: SessionLimits, now = Date.now()): void {
  db.prepare('DELETE FROM sessions WHERE seen_ms < ? OR created_ms < ?').run(now - limits.idleMs, now - limits.absoluteMs);
}
