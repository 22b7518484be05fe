import { createHash, randomBytes } from 'node:crypto';
import type { ApiTokenRow, TokenCreateBody } from '../../protocol/auth-api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Role } from '../../protocol/roles.js';
import type { Db } from '../registry.js';
import { scopeOf, type Principal } from './schema.js';

/**
 * API tokens for scripts, the CLI and Prometheus: `rcat_<id>_<secret>`, scoped to a role (and a school or
 * carrier), optionally expiring, revocable. Only the SHA-256 of the whole token is stored (it has 256 bits
 * of randomness, so a plain hash is enough); the id is public and names the token in lists and the audit log.
 */
interface Stored {
  id: string;
  name: string;
  role: Role;
  school: string | null;
  carrier: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const row = (t: Stored): ApiTokenRow => ({
  id: t.id,
  name: t.name,
  role: t.role,
  school: t.school,
  carrier: t.carrier,
  createdAt: t.created_at,
  expiresAt: t.expires_at,
  revokedAt: t.revoked_at,
});

export function createToken(db: Db, t: TokenCreateBody, now = new Date()): { token: string; info: ApiTokenRow } {
  const id = randomBytes(6).toString('hex');
  const token = `rcat_${id}_${randomBytes(32).toString('base64url')}`;
  const expires = t.ttlSec ? new Date(now.getTime() + t.ttlSec * 1000).toISOString() : null;
  db.prepare('INSERT INTO api_tokens(id, hash, name, role, school, carrier, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?)').run(
    id,
    sha256(token),
    t.name ?? `token-${id}`,
    t.role,
    t.school ?? null,
    t.carrier ?? null,
    now.toISOString(),
    expires,
  );
  return { token, info: getToken(db, id)! };
}

export function getToken(db: Db, id: string): ApiTokenRow | null {
  const t = db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as Stored | undefined;
  return t ? row(t) : null;
}

export function listTokens(db: Db): ApiTokenRow[] {
  return (db.prepare('SELECT * FROM api_tokens ORDER BY created_at, id').all() as Stored[]).map(row);
}

export function revokeToken(db: Db, id: string, now = new Date()): ApiTokenRow {
  const r = db.prepare('UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?').run(now.toISOString(), id);
  if (r.changes === 0) throw new RcError(ErrorCode.AuthUnknownToken, `no API token ${id}`, { id });
  return getToken(db, id)!;
}

/** The principal of a presented token; null when it is unknown, revoked or expired. */
export function tokenPrincipal(db: Db, token: string, now = new Date()): Principal | null {
  if (!/^rcat_[0-9a-f]{12}_[\w-]{43}$/.test(token)) return null;
  const t = db.prepare('SELECT * FROM api_tokens WHERE hash = ?').get(sha256(token)) as Stored | undefined;
  if (!t || t.revoked_at !== null) return null;
  if (t.expires_at !== null && Date.parse(t.expires_at) <= now.getTime()) return null;
  return { kind: 'token', name: t.name, role: t.role, ...scopeOf(t) };
}
