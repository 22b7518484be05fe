import { LoginBody, OkAnswer, SessionAnswer } from '../../../protocol/auth-api.js';
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import type { Principal } from '../../auth/schema.js';
import { SESSION_COOKIE, csrfFor, csrfMatches } from '../../auth/sessions.js';
import { route } from '../route.js';

/** The console's sign-in (issue 12 item 1): a session cookie (rc_session) and its CSRF token. These routes check the cookie themselves. */
const userOf = (p: Principal) => ({ name: p.name, role: p.role, ...(p.school ? { school: p.school } : {}), ...(p.carrier ? { carrier: p.carrier } : {}) });

export const sessionRoutes = [
  route({
    method: 'POST',
    url: '/v1/session',
    listeners: ['operator'],
    access: 'public',
    summary: 'sign in: sets the rc_session cookie (HttpOnly, SameSite=Strict, Secure) and answers the user and the CSRF token',
    description:
      'Wrong user name or password, or a disabled account: auth.bad-credentials (401). More than 5 failures for one name (or 20 from one address) within 15 minutes: ' +
      'auth.rate-limited (429). Every later cookie-authenticated request that is not GET/HEAD carries x-csrf-token.',
    schema: { body: LoginBody, response: { 200: SessionAnswer } },
    handler: async (req, { auth, http }) => {
      const { sessionId, principal } = await auth.login(req.body.username, req.body.password, http.ip);
      http.setCookie(SESSION_COOKIE, sessionId, Math.floor(auth.sessionLimits.absoluteMs / 1000));
      return { user: userOf(principal), csrf: csrfFor(sessionId) };
    },
  }),
  route({
    method: 'GET',
    url: '/v1/session',
    listeners: ['operator'],
    access: 'public',
    summary: 'the signed-in user of the rc_session cookie and its CSRF token; auth.unauthenticated (401) without a valid session',
    schema: { response: { 200: SessionAnswer } },
    handler: (_req, { auth, http }) => {
      const sid = http.cookie(SESSION_COOKIE);
      const p = sid ? auth.fromSession(sid) : null;
      if (!sid || !p) throw new RcError(ErrorCode.AuthUnauthenticated, 'not signed in');
      return { user: userOf(p), csrf: csrfFor(sid) };
    },
  }),
  route({
    method: 'POST',
    url: '/v1/session/logout',
    listeners: ['operator'],
    access: 'public',
    summary: 'sign out: the session ends and the cookie is cleared (x-csrf-token required when signed in)',
    schema: { response: { 200: OkAnswer } },
    handler: (req, { auth, http }) => {
      const sid = http.cookie(SESSION_COOKIE);
      const p = sid ? auth.fromSession(sid) : null;
      if (sid && p) {
        const h = req.raw.headers['x-csrf-token'];
        if (!csrfMatches(sid, Array.isArray(h) ? h[0] : h)) throw new RcError(ErrorCode.AuthCsrf, 'x-csrf-token header missing or wrong');
        auth.logout(sid);
        auth.audit({ who: p.name, role: p.role, source: http.ip, action: 'session.logout', detail: {}, result: 'ok' });
      }
      http.setCookie(SESSION_COOKIE, '', 0);
      return { ok: true as const };
    },
  }),
];
