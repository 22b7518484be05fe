import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { Scope } from '../protocol/lists.js';
import type { DeviceRow, TokenCreateBody, TokenCreated } from '../protocol/enrol.js';
import type { DeviceKind, GateDirection } from '../protocol/ids.js';
import type { Db } from './registry.js';

/**
 * Enrolment tokens and device identities, in the server's registry.
 * Tokens are stored as SHA-256 hashes only (they are 192-bit random values);
 * broker passwords as scrypt hashes ("scrypt$N$r$p$salt$hash").
 */

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };

function scrypt(pw: string, salt: Buffer, keylen: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((res, rej) => scryptCb(pw, salt, keylen, { ...o, maxmem: 64 * 1024 * 1024 }, (e, k) => (e ? rej(e) : res(k))));
}

export async function hashPassword(pw: string): Promise<string> {
  const salt = randomBytes(16);
  const k = await scrypt(pw, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${k.toString('base64')}`;
}

export async function verifyPassword(pw: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const want = Buffer.from(m[5]!, 'base64');
  const got = await scrypt(pw, Buffer.from(m[4]!, 'base64'), want.length, { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
  return got.length === want.length && timingSafeEqual(got, want);
}

export const tokenHash = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

export function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

export function scopesFor(kind: DeviceKind, school: string | null): Scope[] {
  return kind === 'bus' || kind === 'partner' ? ['transit', 'stoplist'] : [`school:${school ?? ''}`, 'stoplist'];
}

export interface Identity {
  id: string;
  kind: DeviceKind;
  school: string | null;
  route: string | null;
  vehicle: string | null;
  direction: GateDirection | null;
  partner: string | null;
  scopes: Scope[];
  identityKey: string;
  boxKey: string;
  pwHash: string;
  /** The same password as a Mosquitto PBKDF2-SHA512 ($7$) hash, for the broker's password file. */
  mosqHash: string;
  /** The same password as bcrypt for the NATS cluster's users (only computed when the server writes them; null otherwise). */
  natsHash: string | null;
  enrolledAt: string;
  rotatedAt: string | null;
  revokedAt: string | null;
}

interface IdentityDbRow {
  id: string;
  kind: string;
  school: string | null;
  route: string | null;
  vehicle: string | null;
  direction: string | null;
  partner?: string | null;
  scopes: string;
  identity_key: string;
  box_key: string;
  pw_hash: string;
  mosq_hash: string;
  nats_hash?: string | null;
  enrolled_at: string;
  rotated_at: string | null;
  revoked_at: string | null;
}

function toIdentity(r: IdentityDbRow): Identity {
  return {
    id: r.id,
    kind: r.kind as DeviceKind,
    school: r.school,
    route: r.route,
    vehicle: r.vehicle,
    direction: r.direction as GateDirection | null,
    partner: r.partner ?? null,
    scopes: JSON.parse(r.scopes) as Scope[],
    identityKey: r.identity_key,
    boxKey: r.box_key,
    pwHash: r.pw_hash,
    mosqHash: r.mosq_hash,
    natsHash: r.nats_hash ?? null,
    enrolledAt: r.enrolled_at,
    rotatedAt: r.rotated_at,
    revokedAt: r.revoked_at,
  };
}

/** One broker password as each consumer keeps it: scrypt (embedded broker), Mosquitto $7$, and bcrypt for NATS when configured. */
export interface PasswordHashes {
  pwHash: string;
  mosqHash: string;
  natsHash?: string | null;
}

export interface EnrolRequest {
  token: string;
  kind: DeviceKind;
  school?: string | undefined;
  route?: string | undefined;
  vehicle?: string | undefined;
  direction?: GateDirection | undefined;
  partner?: string | undefined;
  identityKey: string;
  boxKey: string;
}

export class DeviceRegistry {
  constructor(private readonly db: Db) {}

  createToken(b: TokenCreateBody, now = Date.now()): TokenCreated {
    const token = `rce_${randomBytes(24).toString('base64url')}`;
    const hash = tokenHash(token);
    const id = hash.slice(0, 8);
    const expiresMs = now + b.ttlSec * 1000;
    this.db
      .prepare('INSERT INTO enrol_tokens(hash, id, kind, school, route, partner, created_at, expires_ms) VALUES (?,?,?,?,?,?,?,?)')
      .run(hash, id, b.kind, b.school ?? null, b.route ?? null, b.partner ?? null, new Date(now).toISOString(), expiresMs);
    return {
      token,
      id,
      kind: b.kind,
      school: b.school ?? null,
      route: b.route ?? null,
      ...(b.partner ? { partner: b.partner } : {}),
      expiresAt: new Date(expiresMs).toISOString(),
    };
  }

  /**
   * Check the token, consume it and create the identity, in one transaction.
   * provision.token-invalid / token-used / token-expired / token-wrong-kind; nothing changed on error.
   */
  enrol(
    req: EnrolRequest,
    hashes: PasswordHashes,
    now = Date.now(),
    check?: (d: { kind: DeviceKind; school: string | null; route: string | null; partner: string | null }) => void,
  ): Identity {
    const hash = tokenHash(req.token);
    return this.db.transaction((): Identity => {
      const t = this.db.prepare('SELECT id, kind, school, route, partner, expires_ms, used_at FROM enrol_tokens WHERE hash = ?').get(hash) as
        | { id: string; kind: string; school: string | null; route: string | null; partner: string | null; expires_ms: number; used_at: string | null }
        | undefined;
      if (!t) throw new RcError(ErrorCode.ProvisionTokenInvalid, 'the enrolment token is not known to this server');
      if (t.used_at) throw new RcError(ErrorCode.ProvisionTokenUsed, 'the enrolment token was already used', { tokenId: t.id, usedAt: t.used_at });
      if (now > t.expires_ms)
        throw new RcError(ErrorCode.ProvisionTokenExpired, 'the enrolment token has expired', {
          tokenId: t.id,
          expiredAt: new Date(t.expires_ms).toISOString(),
        });
      if (t.kind !== req.kind)
        throw new RcError(ErrorCode.ProvisionTokenWrongKind, `the token is for a ${t.kind}, not a ${req.kind}`, {
          tokenId: t.id,
          tokenKind: t.kind,
          kind: req.kind,
        });
      const school = req.kind === 'bus' || req.kind === 'partner' ? null : (req.school ?? t.school);
      const partner = req.kind === 'partner' ? (req.partner ?? t.partner) : null;
      if (t.partner && partner !== t.partner)
        throw new RcError(ErrorCode.ProvisionTokenWrongKind, `the token is for partner ${t.partner}, not ${partner}`, {
          tokenId: t.id,
          tokenPartner: t.partner,
          partner,
        });
      if (req.kind === 'partner' && !partner) throw new RcError(ErrorCode.ServerBadRequest, 'a partner device needs --partner');
      const route = req.kind === 'bus' ? (req.route ?? t.route) : null;
      if (t.school && school !== t.school)
        throw new RcError(ErrorCode.ProvisionTokenWrongKind, `the token is for school ${t.school}, not ${school}`, {
          tokenId: t.id,
          tokenSchool: t.school,
          school,
        });
      if (t.route && route !== t.route)
        throw new RcError(ErrorCode.ProvisionTokenWrongKind, `the token is for route ${t.route}, not ${route}`, { tokenId: t.id, tokenRoute: t.route, route });
      if (req.kind !== 'bus' && req.kind !== 'partner' && !school) throw new RcError(ErrorCode.ServerBadRequest, `a ${req.kind} needs --school`);
      if (req.kind === 'bus' && !route) throw new RcError(ErrorCode.ServerBadRequest, 'a bus needs --route');
      check?.({ kind: req.kind, school, route, partner });
      if (this.db.prepare('SELECT 1 FROM device_identities WHERE identity_key = ? OR box_key = ?').get(req.identityKey, req.boxKey)) {
        throw new RcError(ErrorCode.ServerBadRequest, 'these device keys are already enrolled; generate new ones');
      }
      let id: string;
      do id = `${req.kind}-${randomBytes(5).toString('hex')}`;
      while (this.db.prepare('SELECT 1 FROM device_identities WHERE id = ?').get(id));
      const at = new Date(now).toISOString();
      const scopes = scopesFor(req.kind, school);
      this.db
        .prepare(
          'INSERT INTO device_identities(id, kind, school, route, vehicle, direction, partner, scopes, identity_key, box_key, pw_hash, mosq_hash, nats_hash, enrolled_at, token_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
        )
        .run(
          id,
          req.kind,
          school,
          route,
          req.vehicle ?? null,
          req.direction ?? null,
          partner,
          JSON.stringify(scopes),
          req.identityKey,
          req.boxKey,
          hashes.pwHash,
          hashes.mosqHash,
          hashes.natsHash ?? null,
          at,
          t.id,
        );
      this.db.prepare('UPDATE enrol_tokens SET used_at = ?, device = ? WHERE hash = ?').run(at, id, hash);
      return this.get(id)!;
    })();
  }

  get(id: string): Identity | null {
    const r = this.db.prepare('SELECT * FROM device_identities WHERE id = ?').get(id) as IdentityDbRow | undefined;
    return r ? toIdentity(r) : null;
  }

  all(): Identity[] {
    return (this.db.prepare('SELECT * FROM device_identities ORDER BY id').all() as IdentityDbRow[]).map(toIdentity);
  }

  /** Active (not revoked) identities: what the broker's password file holds. */
  active(): Identity[] {
    return this.all().filter((d) => !d.revokedAt);
  }

  list(): DeviceRow[] {
    const status = new Map(
      (this.db.prepare('SELECT id, online, last_seen FROM devices').all() as { id: string; online: number; last_seen: string | null }[]).map((r) => [r.id, r]),
    );
    return this.all().map((d) => ({
      id: d.id,
      kind: d.kind,
      school: d.school,
      route: d.route,
      vehicle: d.vehicle,
      direction: d.direction,
      ...(d.partner ? { partner: d.partner } : {}),
      enrolledAt: d.enrolledAt,
      rotatedAt: d.rotatedAt,
      revokedAt: d.revokedAt,
      online: (status.get(d.id)?.online ?? 0) === 1 && !d.revokedAt,
      lastSeen: status.get(d.id)?.last_seen ?? null,
    }));
  }

  /** server.not-found for an unknown id; revoking twice is harmless. */
  revoke(id: string, now = Date.now()): Identity {
    const d = this.get(id);
    if (!d) throw new RcError(ErrorCode.ServerNotFound, `no device ${id}`, { device: id });
    if (!d.revokedAt) this.db.prepare('UPDATE device_identities SET revoked_at = ? WHERE id = ?').run(new Date(now).toISOString(), id);
    return this.get(id)!;
  }

  /**
   * Record a signed request's nonce (key "<device>:<nonce>"); false when it was seen before (a replay).
   * Nonces older than `keepMs` are forgotten first: a proof that old is refused by its timestamp anyway.
   * Kept in the registry, so a request captured before a restart cannot be replayed after it.
   */
  useNonce(key: string, now: number, keepMs: number): boolean {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM proof_nonces WHERE seen_ms < ?').run(now - keepMs);
      return this.db.prepare('INSERT INTO proof_nonces(nonce, seen_ms) VALUES (?, ?) ON CONFLICT DO NOTHING').run(key, now).changes === 1;
    })();
  }

  setPassword(id: string, hashes: PasswordHashes, now = Date.now()): void {
    this.db
      .prepare('UPDATE device_identities SET pw_hash = ?, mosq_hash = ?, nats_hash = ?, rotated_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(hashes.pwHash, hashes.mosqHash, hashes.natsHash ?? null, new Date(now).toISOString(), id);
  }
}
