import type { Role } from '../../protocol/roles.js';
import { ensureAuditSchema } from '../audit.js';
import type { Db } from '../registry.js';

/**
 * The accounts' tables in the registry (openRegistry calls ensureAuthSchema): users (scrypt hashes),
 * sessions (only the hash of the cookie's id), API tokens (only their hash), and the audit log (../audit.ts).
 */
const AUTH_SCHEMA = `
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, role TEXT NOT NULL, school TEXT, carrier TEXT, password TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, disabled_at TEXT);
CREATE TABLE IF NOT EXISTS sessions(id_hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS api_tokens(id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL, school TEXT, carrier TEXT, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT);
`;

export function ensureAuthSchema(db: Db): void {
  db.exec(AUTH_SCHEMA);
  ensureAuditSchema(db);
}

/** Who calls a role route: a signed-in user or an API token (school and carrier roles carry their id). */
export interface Principal {
  kind: 'user' | 'token';
  name: string;
  role: Role;
  school?: string;
  carrier?: string;
}

/** The principal's scope ids, only those it has. */
export function scopeOf(r: { school: string | null; carrier: string | null }): { school?: string; carrier?: string } {
  return { ...(r.school ? { school: r.school } : {}), ...(r.carrier ? { carrier: r.carrier } : {}) };
}
