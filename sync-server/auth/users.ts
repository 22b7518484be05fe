import type { UserCreateBody, UserRow } from '../../protocol/auth-api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Role } from '../../protocol/roles.js';
import type { Db } from '../registry.js';
import { generatePassword, hashPassword } from './passwords.js';

/** Operator accounts: a name, a role (school/carrier with their id), a scrypt hash, and a disabled mark (never deleted: the audit log names them). */
interface Stored {
  name: string;
  role: Role;
  school: string | null;
  carrier: string | null;
  password: string;
  created_at: string;
  disabled_at: string | null;
}

const row = (u: Stored): UserRow => ({ name: u.name, role: u.role, school: u.school, carrier: u.carrier, createdAt: u.created_at, disabledAt: u.disabled_at });

export function getUser(db: Db, name: string): (UserRow & { hash: string }) | null {
  const u = db.prepare('SELECT * FROM users WHERE name = ?').get(name) as Stored | undefined;
  return u ? { ...row(u), hash: u.password } : null;
}

export function listUsers(db: Db): UserRow[] {
  return (db.prepare('SELECT * FROM users ORDER BY name').all() as Stored[]).map(row);
}

export function countUsers(db: Db): number {
  return (db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
}

/** Add a user; without a password one is generated and returned (shown once). */
export async function addUser(db: Db, u: UserCreateBody, now = new Date()): Promise<{ user: UserRow; password?: string }> {
  const generated = u.password === undefined ? generatePassword() : undefined;
  const hash = await hashPassword(u.password ?? generated!);
  const at = now.toISOString();
  const r = db
    .prepare('INSERT INTO users(name, role, school, carrier, password, created_at, updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(name) DO NOTHING')
    .run(u.name, u.role, u.school ?? null, u.carrier ?? null, hash, at, at);
  if (r.changes === 0) throw new RcError(ErrorCode.AuthUserExists, `user ${u.name} exists already`, { name: u.name });
  return { user: getUser(db, u.name)!, ...(generated ? { password: generated } : {}) };
}

/** A new password (generated when none is given); the user's sessions end. */
export async function setPassword(db: Db, name: string, password: string | undefined, now = new Date()): Promise<{ user: UserRow; password?: string }> {
  if (!getUser(db, name)) throw new RcError(ErrorCode.AuthUnknownUser, `no user ${name}`, { name });
  const generated = password === undefined ? generatePassword() : undefined;
  const hash = await hashPassword(password ?? generated!);
  db.transaction(() => {
    db.prepare('UPDATE users SET password = ?, updated_at = ? WHERE name = ?').run(hash, now.toISOString(), name);
    db.prepare('DELETE FROM sessions WHERE "user" = ?').run(name);
  })();
  return { user: getUser(db, name)!, ...(generated ? { password: generated } : {}) };
}

/** Disable a user: it cannot sign in and its sessions end at once. */
export function disableUser(db: Db, name: string, now = new Date()): UserRow {
  if (!getUser(db, name)) throw new RcError(ErrorCode.AuthUnknownUser, `no user ${name}`, { name });
  db.transaction(() => {
    db.prepare('UPDATE users SET disabled_at = coalesce(disabled_at, ?), updated_at = ? WHERE name = ?').run(now.toISOString(), now.toISOString(), name);
    db.prepare('DELETE FROM sessions WHERE "user" = ?').run(name);
  })();
  return getUser(db, name)!;
}
