import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Access } from '../../protocol/roles.js';
import { summarize } from '../audit.js';
import type { Principal } from './schema.js';
import type { Auth } from './service.js';
import { CABINET_COOKIE, holderCsrfOk, type Holder } from '../cabinet/sessions.js';
import { SESSION_COOKIE, csrfMatches } from './sessions.js';

/**
 * The operator API's one access check and one audit hook, driven by each route's `access` (route.ts):
 *  - 'public', 'device': no user check (a device route checks the device's own proof);
 *  - a role list: `Authorization: Bearer <API token>` or the console's `rc_session` cookie, else 401
 *    auth.unauthenticated; a cookie-authenticated request that is not GET/HEAD must carry the session's
 *    `x-csrf-token` (403 auth.csrf); a role not in the list is 403 auth.forbidden.
 * It runs on onRequest, before a body is read (a refused CSV upload is not streamed in).
 * Every successful non-GET call on a role route is then written to the audit log (onSend), with a summary of
 * its params, query and body and whatever the handler added with ctx.audit().
 */
interface CallState {
  principal: Principal;
  detail: Record<string, unknown>;
}
const STATE = new WeakMap<object, CallState>();
const HOLDERS = new WeakMap<object, Holder>();

/** The signed-in cardholder of a 'holder' route (after the hook admitted them). */
export function holderState(req: FastifyRequest): Holder | undefined {
  return HOLDERS.get(req.raw);
}

/**
 * 'holder' routes: the cabinet's cookie `rc_cabinet` names a live cardholder session (sync-server/cabinet/sessions.ts),
 * else 401 auth.unauthenticated; a write must carry the session's x-csrf-token (403 auth.csrf). API tokens and the
 * console's session do not count: a holder is only ever a signed-in cardholder.
 */
function admitHolder(req: FastifyRequest, cabinet: { holder(sessionId: string): Holder | null } | null): void {
  const sid = req.cookies[CABINET_COOKIE];
  const h = sid && cabinet ? cabinet.holder(sid) : null;
  if (!h) throw unauthenticated('sign in to the cabinet');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const c = req.headers['x-csrf-token'];
    if (!holderCsrfOk(h.sessionId, Array.isArray(c) ? c[0] : c)) throw new RcError(ErrorCode.AuthCsrf, 'x-csrf-token header missing or wrong');
  }
  HOLDERS.set(req.raw, h);
}

export function accessOf(req: FastifyRequest): Access | undefined {
  return (req.routeOptions.config as { access?: Access } | undefined)?.access;
}

/** The caller of a role route (after the hook admitted it), and its audit detail; undefined on other routes. */
export function callState(req: FastifyRequest): CallState | undefined {
  return STATE.get(req.raw);
}

const unauthenticated = (message: string) => new RcError(ErrorCode.AuthUnauthenticated, message);

/** Who a request comes from, by token or by session cookie (null when neither is valid); whether the cookie was used. */
export function identify(req: FastifyRequest, auth: Auth): { principal: Principal | null; sessionId: string | null } {
  const authz = req.headers.authorization;
  if (authz !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authz);
    return { principal: m ? auth.fromBearer(m[1]!) : null, sessionId: null };
  }
  const sid = req.cookies[SESSION_COOKIE];
  return sid ? { principal: auth.fromSession(sid), sessionId: sid } : { principal: null, sessionId: null };
}

export function installAuth(app: FastifyInstance, auth: Auth, cabinet: { holder(sessionId: string): Holder | null } | null = null): void {
  app.addHook('onRequest', async (req) => {
    const access = accessOf(req);
    if (access === undefined || access === 'public' || access === 'device') return;
    if (access === 'holder') return admitHolder(req, cabinet);
    const bearer = req.headers.authorization !== undefined;
    const { principal, sessionId } = identify(req, auth);
    if (!principal)
      throw unauthenticated(bearer ? 'the API token is not valid (unknown, expired or revoked)' : 'sign in, or pass an API token (Authorization: Bearer …)');
    if (sessionId !== null && req.method !== 'GET' && req.method !== 'HEAD') {
      const h = req.headers['x-csrf-token'];
      if (!csrfMatches(sessionId, Array.isArray(h) ? h[0] : h)) throw new RcError(ErrorCode.AuthCsrf, 'x-csrf-token header missing or wrong');
    }
    if (!access.includes(principal.role))
      throw new RcError(ErrorCode.AuthForbidden, `a ${principal.role} may not call ${req.method} ${req.routeOptions.url}`, { role: principal.role });
    STATE.set(req.raw, { principal, detail: {} });
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const st = STATE.get(req.raw);
    if (!st || req.method === 'GET' || req.method === 'HEAD' || reply.statusCode >= 400) return payload;
    auth.audit({
      who: st.principal.name,
      role: st.principal.role,
      source: req.ip,
      action: `${req.method} ${req.routeOptions.url ?? req.url}`,
      detail: {
        ...(st.principal.kind === 'token' ? { via: 'token' } : {}),
        ...summarize(req.params),
        ...summarize(req.query),
        ...summarize(req.body),
        ...st.detail,
      },
      result: 'ok',
    });
    return payload;
  });
}
