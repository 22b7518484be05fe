import { renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { writeAudit, type AuditEntry } from '../audit.js';
import type { Db } from '../registry.js';
import { dummyHash, verifyPassword } from './passwords.js';
import { DEFAULT_LOGIN_LIMITS, LoginLimiter, type LoginLimits } from './rate-limit.js';
import { scopeOf, type Principal } from './schema.js';
import { DEFAULT_SESSION_LIMITS, createSession, endSession, pruneSessions, sessionPrincipal, type SessionLimits } from './sessions.js';
import { createToken, listTokens, revokeToken, tokenPrincipal } from './tokens.js';
import { addUser, countUsers, getUser } from './users.js';

export interface AuthOptions {
  sessions?: Partial<SessionLimits>;
  login?: Partial<LoginLimits>;
}

/** The running server's accounts: sign-in with its rate limit, sessions, bearer tokens, and the audit log. */
export class Auth {
  readonly sessionLimits: SessionLimits;
  private readonly limiter: LoginLimiter;

  constructor(
    readonly db: Db,
    o: AuthOptions = {},
  ) {
    this.sessionLimits = { ...DEFAULT_SESSION_LIMITS, ...o.sessions };
    this.limiter = new LoginLimiter({ ...DEFAULT_LOGIN_LIMITS, ...o.login });
    pruneSessions(db, this.sessionLimits);
  }

  /** Check a user name and password; a session id for the cookie, or auth.bad-credentials / auth.rate-limited (audited either way). */
  async login(username: string, password: string, address: string): Promise<{ sessionId: string; principal: Principal }> {
    const refuse = (code: ErrorCode, message: string): never => {
      this.audit({ who: username.slice(0, 64), role: null, source: address, action: 'session.login', detail: {}, result: code });
      throw new RcError(code, message);
    };
    if (this.limiter.blocked(username, address)) refuse(ErrorCode.AuthRateLimited, 'too many failed sign-ins: try again in 15 minutes');
    const u = getUser(this.db, username);
    // an unknown name costs as much as a wrong password
    const ok = await verifyPassword(password, u?.hash ?? (await dummyHash()));
    if (!u || !ok || u.disabledAt !== null) {
      this.limiter.failed(username, address);
      return refuse(ErrorCode.AuthBadCredentials, 'wrong user name or password');
    }
    this.limiter.succeeded(username);
    const sessionId = createSession(this.db, u.name);
    const principal: Principal = { kind: 'user', name: u.name, role: u.role, ...scopeOf(u) };
    this.audit({ who: u.name, role: u.role, source: address, action: 'session.login', detail: {}, result: 'ok' });
    return { sessionId, principal };
  }

  logout(sessionId: string): void {
    endSession(this.db, sessionId);
  }

  fromSession(sessionId: string): Principal | null {
    return sessionPrincipal(this.db, sessionId, this.sessionLimits);
  }

  fromBearer(token: string): Principal | null {
    return tokenPrincipal(this.db, token);
  }

  audit(e: AuditEntry): void {
    writeAudit(this.db, e);
  }
}

/** The first admin, when no user exists yet: name `admin`, a generated password (the caller prints it once). */
export async function ensureFirstAdmin(db: Db): Promise<{ name: string; password: string } | null> {
  if (countUsers(db) > 0) return null;
  const r = await addUser(db, { name: 'admin', role: 'admin' });
  writeAudit(db, { who: 'server', role: null, source: 'local', action: 'user.add', detail: { name: 'admin', role: 'admin', first: true }, result: 'ok' });
  return { name: r.user.name, password: r.password! };
}

export const ADMIN_TOKEN_FILE = 'admin.token';
/** The name the admin token had before it was per instance: still revoked at a start, so none is left valid. */
const LEGACY_ADMIN_TOKEN_NAME = 'admin-token';

/**
 * The admin token's name: one per instance (host and data dir). Several instances share one registry on PostgreSQL
 * (docs/postgres.md "Several instances"): an instance starting revokes its own previous token, never another's.
 */
export function adminTokenName(dataDir: string, host = hostname()): string {
  return `admin-token ${host}:${resolve(dataDir)}`;
}

/**
 * A fresh admin API token in DATA/admin.token (0600), for the local CLI and scripts; this instance's previous one is
 * revoked (another instance's, on a shared registry, stays valid). Called at every start.
 */
export function writeAdminToken(db: Db, dataDir: string): string {
  const name = adminTokenName(dataDir);
  const created = db.transaction(() => {
    for (const t of listTokens(db)) if ((t.name === name || t.name === LEGACY_ADMIN_TOKEN_NAME) && t.revokedAt === null) revokeToken(db, t.id);
    return createToken(db, { role: 'admin', name });
  })();
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, created.token + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}
