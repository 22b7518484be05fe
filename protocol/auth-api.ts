import { z } from 'zod';
import { Role } from './roles.js';

/**
 * The operator API's accounts (issue 12): sessions of the console, users, API tokens and the audit log.
 *
 *   POST /v1/session                {username, password} → {user, csrf} and the rc_session cookie
 *   GET  /v1/session                the current session (401 auth.unauthenticated without one)
 *   POST /v1/session/logout         {ok: true}, cookie cleared
 *   GET  /v1/users, POST /v1/users, POST /v1/users/:name/password|disable     (admin)
 *   GET  /v1/tokens, POST /v1/tokens, POST /v1/tokens/:id/revoke              (admin)
 *   GET  /v1/audit?since=&until=&who=&action=&limit=&format=json|csv          (admin, auditor)
 *
 * A cookie-authenticated request that is not GET/HEAD carries `x-csrf-token: <csrf>`; scripts use `Authorization: Bearer <token>`.
 */

const Id = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)');
export const UserName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'lower-case letters, digits, _ . - (at most 64)');

/** Who is signed in (or whom a token stands for): a school or carrier user carries its school or carrier id. */
export const SessionUser = z
  .object({ name: z.string(), role: Role, school: z.string().optional(), carrier: z.string().optional() })
  .meta({ id: 'SessionUser' });
export type SessionUser = z.infer<typeof SessionUser>;

export const LoginBody = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
export const SessionAnswer = z.object({ user: SessionUser, csrf: z.string() }).meta({ id: 'SessionAnswer' });
export type SessionAnswer = z.infer<typeof SessionAnswer>;
export const OkAnswer = z.object({ ok: z.literal(true) });

/** school and carrier roles need their id; the other roles take none. */
const scoped = <T extends { role: Role; school?: string | undefined; carrier?: string | undefined }>(v: T, ctx: z.RefinementCtx) => {
  if (v.role === 'school' && !v.school) ctx.addIssue({ code: 'custom', path: ['school'], message: 'a school account needs --school ID' });
  if (v.role === 'carrier' && !v.carrier) ctx.addIssue({ code: 'custom', path: ['carrier'], message: 'a carrier account needs --carrier ID' });
  if (v.role !== 'school' && v.school) ctx.addIssue({ code: 'custom', path: ['school'], message: 'only a school account has a school' });
  if (v.role !== 'carrier' && v.carrier) ctx.addIssue({ code: 'custom', path: ['carrier'], message: 'only a carrier account has a carrier' });
};

export const UserCreateBody = z
  .object({ name: UserName, role: Role, school: Id.optional(), carrier: Id.optional(), password: z.string().min(12).max(1024).optional() })
  .superRefine(scoped);
export type UserCreateBody = z.infer<typeof UserCreateBody>;
/** A new password; without one the server generates one (answered once). */
export const PasswordBody = z.object({ password: z.string().min(12).max(1024).optional() });

export const UserRow = z
  .object({
    name: z.string(),
    role: Role,
    school: z.string().nullable(),
    carrier: z.string().nullable(),
    createdAt: z.string(),
    disabledAt: z.string().nullable(),
  })
  .meta({ id: 'User' });
export type UserRow = z.infer<typeof UserRow>;
export const UsersAnswer = z.object({ users: z.array(UserRow) });
/** A user created or given a new password: the password is shown this once when the server generated it. */
export const UserAnswer = z.object({ user: UserRow, password: z.string().optional() });

export const TokenCreateBody = z
  .object({
    role: Role,
    name: Id.optional(),
    school: Id.optional(),
    carrier: Id.optional(),
    /** Valid for this many seconds (none: until revoked). */
    ttlSec: z
      .number()
      .int()
      .min(60)
      .max(10 * 366 * 86_400)
      .optional(),
  })
  .superRefine(scoped);
export type TokenCreateBody = z.infer<typeof TokenCreateBody>;
export const ApiTokenRow = z
  .object({
    id: z.string(),
    name: z.string(),
    role: Role,
    school: z.string().nullable(),
    carrier: z.string().nullable(),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .meta({ id: 'ApiToken' });
export type ApiTokenRow = z.infer<typeof ApiTokenRow>;
export const ApiTokensAnswer = z.object({ tokens: z.array(ApiTokenRow) });
/** The token itself is answered once, at creation; the server keeps only its hash. */
export const ApiTokenCreated = z.object({ token: z.string(), info: ApiTokenRow });

export const AuditRow = z
  .object({
    seq: z.number().int(),
    time: z.string(),
    /** The user or token name; `cli` for local commands on the registry. */
    who: z.string(),
    role: z.string().nullable(),
    /** The client address, or `local` for the CLI. */
    source: z.string(),
    /** `METHOD /route/pattern`, or a named action (`user.add`, `session.login`, …). */
    action: z.string(),
    /** A summary: parameters, counts, names and versions; never a PAN or a list of card tokens. */
    detail: z.record(z.string(), z.unknown()),
    /** `ok`, or the error code of a refused action. */
    result: z.string(),
  })
  .meta({ id: 'AuditRow' });
export type AuditRow = z.infer<typeof AuditRow>;
export const AuditQuery = z.object({
  since: z.string().optional(),
  until: z.string().optional(),
  who: z.string().max(64).optional(),
  action: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(1000),
  format: z.enum(['json', 'csv']).default('json'),
});
export type AuditQuery = z.infer<typeof AuditQuery>;
export const AuditAnswer = z.object({ rows: z.array(AuditRow) });
