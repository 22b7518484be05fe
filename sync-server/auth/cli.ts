import { userInfo } from 'node:os';
import { TokenCreateBody, UserCreateBody, type ApiTokenRow, type UserRow } from '../../protocol/auth-api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { writeAudit } from '../audit.js';
import type { Db } from '../registry.js';
import { createToken, listTokens, revokeToken } from './tokens.js';
import { addUser, disableUser, listUsers, setPassword } from './users.js';

/**
 * The logic of the local account commands (rc-sync-server user …, token …): they work on the registry of
 * --data directly, like the other local commands, and every change is written to the audit log as
 * `cli:<OS user>` from `local`.
 */
const who = () => {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
};

function audited<T>(db: Db, action: string, detail: Record<string, unknown>, f: () => T): T {
  try {
    const r = f();
    writeAudit(db, { who: who(), role: null, source: 'local', action, detail, result: 'ok' });
    return r;
  } catch (e) {
    const code = e instanceof RcError ? e.code : 'error';
    writeAudit(db, { who: who(), role: null, source: 'local', action, detail, result: code });
    throw e;
  }
}

async function auditedAsync<T>(db: Db, action: string, detail: Record<string, unknown>, f: () => Promise<T>): Promise<T> {
  let r: T;
  try {
    r = await f();
  } catch (e) {
    writeAudit(db, { who: who(), role: null, source: 'local', action, detail, result: e instanceof RcError ? e.code : 'error' });
    throw e;
  }
  writeAudit(db, { who: who(), role: null, source: 'local', action, detail, result: 'ok' });
  return r;
}

function valid<T>(p: { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } }): T {
  if (p.success) return p.data;
  throw new RcError(ErrorCode.InputInvalid, p.error.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; '));
}

export function cliAddUser(db: Db, o: { name: string; role: string; school?: string; carrier?: string; password?: string }) {
  const body = valid(UserCreateBody.safeParse(o));
  return auditedAsync(db, 'user.add', { name: body.name, role: body.role, school: body.school ?? null, carrier: body.carrier ?? null }, () =>
    addUser(db, body),
  );
}

export function cliSetPassword(db: Db, name: string, password: string | undefined) {
  if (password !== undefined && password.length < 12) throw new RcError(ErrorCode.InputInvalid, 'a password has at least 12 characters');
  return auditedAsync(db, 'user.passwd', { name }, () => setPassword(db, name, password));
}

export function cliDisableUser(db: Db, name: string): UserRow {
  return audited(db, 'user.disable', { name }, () => disableUser(db, name));
}

export function cliUsers(db: Db): UserRow[] {
  return listUsers(db);
}

export function cliCreateToken(db: Db, o: { role: string; name?: string; school?: string; carrier?: string; ttlSec?: number }) {
  const body = valid(TokenCreateBody.safeParse(o));
  return audited(db, 'token.create', { role: body.role, name: body.name ?? null, school: body.school ?? null, carrier: body.carrier ?? null }, () => {
    const t = createToken(db, body);
    return t;
  });
}

export function cliRevokeToken(db: Db, id: string): ApiTokenRow {
  return audited(db, 'token.revoke', { id }, () => revokeToken(db, id));
}

export function cliTokens(db: Db): ApiTokenRow[] {
  return listTokens(db);
}
