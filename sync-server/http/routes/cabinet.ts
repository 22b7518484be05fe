import {
  CallbackQuery,
  CardAnswer,
  CardBody,
  ChildDaysAnswer,
  DemoSignInQuery,
  ChildParams,
  DebtsAnswer,
  HolderParams,
  LoginQuery,
  LogoutAnswer,
  MeAnswer,
  RangeQuery,
  StaffCardAnswer,
  TripsAnswer,
} from '../../../protocol/cabinet-api.js';
import { ErrorCode, RcError, isRcError } from '../../../protocol/errors.js';
import { WRITERS } from '../../../protocol/roles.js';
import type { Cabinet } from '../../cabinet/service.js';
import { CABINET_COOKIE, type Holder } from '../../cabinet/sessions.js';
import { DEMO_SIGN_IN_PATH } from '../../cabinet/demo-provider.js';
import { WEB_CSP } from '../../portal/serve.js';
import { FileAnswer, route, type HandlerContext } from '../route.js';
import { z } from 'zod';

/**
 * The cardholder's cabinet (issue 15, protocol/cabinet-api.ts): sign-in through the configured identity provider, then
 * the holder's own card, benefits, trips, children and debts. Served on the public listener (`--public-listen`), or on
 * the operator listener when there is none (start/http.ts). The staff-assisted connection is the console's (operator listener).
 */
const cabinetOf = (ctx: HandlerContext): Cabinet => {
  if (!ctx.cabinet) throw new RcError(ErrorCode.ServerNotFound, 'the cardholder cabinet is not configured on this server (--cabinet FILE)');
  return ctx.cabinet;
};
const holderOf = (ctx: HandlerContext): Holder => {
  if (!ctx.holder) throw new RcError(ErrorCode.AuthUnauthenticated, 'sign in to the cabinet');
  return ctx.holder;
};

/** A 302 to `location` (no body). */
function redirect(ctx: HandlerContext, location: string): FileAnswer {
  ctx.http.status(302);
  ctx.http.header('location', location);
  ctx.http.header('cache-control', 'no-store');
  return new FileAnswer(Buffer.alloc(0), 'text/plain; charset=utf-8', null);
}
const Redirect = z.string().meta({ description: '302 to the identity provider or back to the cabinet (no body)' });
const HOLDER_LISTENERS = ['public'] as const;

export const cabinetRoutes = [
  route({
    method: 'GET',
    url: '/v1/cabinet/login',
    listeners: HOLDER_LISTENERS,
    access: 'public',
    summary: "start a cardholder's sign-in: 302 to the identity provider (ESIA or OpenID Connect)",
    description: 'More than 60 starts or 20 failed sign-ins from one address within 15 minutes: cabinet.login-limited (429).',
    schema: { querystring: LoginQuery, response: { 200: Redirect } },
    handler: async (req, ctx) => redirect(ctx, await cabinetOf(ctx).login(req.query.next, ctx.http.ip)),
  }),
  route({
    method: 'GET',
    url: '/v1/cabinet/callback',
    listeners: HOLDER_LISTENERS,
    access: 'public',
    summary: 'the identity provider sends the browser back here: sets rc_cabinet (HttpOnly, Secure, SameSite=Lax) and 302 to next',
    description:
      'Every refusal is a 302 to /cabinet/?error=CODE (never a 500): cabinet.bad-state, cabinet.login-declined, cabinet.code-rejected, ' +
      'cabinet.client-rejected, cabinet.bad-id-token, cabinet.provider-down, cabinet.login-limited.',
    schema: { querystring: CallbackQuery, response: { 200: Redirect } },
    handler: async (req, ctx) => {
      const cab = cabinetOf(ctx);
      // every parameter the provider sent (code, state, iss, error…), as sent
      const query = Object.fromEntries(new URL(req.raw.url ?? '/', 'http://x').searchParams);
      try {
        const { sessionId, next } = await cab.callback(query, ctx.http.ip);
        ctx.http.setCookie(CABINET_COOKIE, sessionId, 8 * 3600, { lax: true });
        return redirect(ctx, next);
      } catch (e) {
        const code = isRcError(e) ? e.code : ErrorCode.CabinetProviderDown;
        return redirect(ctx, `/cabinet/?error=${encodeURIComponent(code)}`);
      }
    },
  }),
  route({
    method: 'GET',
    url: DEMO_SIGN_IN_PATH,
    listeners: HOLDER_LISTENERS,
    access: 'public',
    summary: "the demo's sign-in page (npm start only): the demo's persons, a 'sign in as' button each, to the callback with a one-time code",
    description:
      "Server-rendered HTML under the pages' CSP (no script). Only with the demo's identity provider (server.not-found otherwise); " +
      'an unknown or expired state is a 302 to /cabinet/?error=cabinet.bad-state.',
    schema: { querystring: DemoSignInQuery, response: { 200: z.string().meta({ description: 'text/html: the sign-in page' }) } },
    handler: (req, ctx) => {
      let html: string;
      try {
        html = cabinetOf(ctx).demoSignInPage(req.query.state);
      } catch (e) {
        if (isRcError(e, ErrorCode.CabinetBadState)) return redirect(ctx, `/cabinet/?error=${encodeURIComponent(e.code)}`);
        throw e;
      }
      ctx.http.header('content-security-policy', WEB_CSP);
      ctx.http.header('x-content-type-options', 'nosniff');
      ctx.http.header('referrer-policy', 'no-referrer');
      ctx.http.header('cache-control', 'no-store');
      return new FileAnswer(Buffer.from(html, 'utf8'), 'text/html; charset=utf-8', null);
    },
  }),
  route({
    method: 'POST',
    url: '/v1/cabinet/logout',
    listeners: HOLDER_LISTENERS,
    access: 'holder',
    summary: 'sign out of the cabinet: the session ends and the cookie is cleared (x-csrf-token)',
    schema: { response: { 200: LogoutAnswer } },
    handler: (_req, ctx) => {
      cabinetOf(ctx).logout(holderOf(ctx).sessionId);
      ctx.http.setCookie(CABINET_COOKIE, '', 0, { lax: true });
      return { ok: true as const };
    },
  }),
  route({
    method: 'GET',
    url: '/v1/cabinet/me',
    listeners: HOLDER_LISTENERS,
    access: 'holder',
    summary: 'the signed-in holder: name, CSRF token, card (masked), benefits with their fare rules, children',
    schema: { response: { 200: MeAnswer } },
    handler: (_req, ctx) => cabinetOf(ctx).me(holderOf(ctx)),
  }),
  route({
    method: 'POST',
    url: '/v1/cabinet/card',
    listeners: HOLDER_LISTENERS,
    access: 'holder',
    summary: "connect or replace the holder's card (number and expiry in the body; never stored, logged or echoed)",
    description:
      'card.bad-pan / card.bad-expiry (400) count as wrong numbers: five within an hour lock connecting for an hour for the person and ' +
      'the address (cabinet.connect-locked, 429). A card connected to another person: cabinet.card-taken (409).',
    schema: { body: CardBody, response: { 200: CardAnswer } },
    handler: (req, ctx) => cabinetOf(ctx).connect(holderOf(ctx), req.body, ctx.http.ip),
  }),
  route({
    method: 'GET',
    url: '/v1/cabinet/trips',
    listeners: HOLDER_LISTENERS,
    access: 'holder',
    summary: "the holder's bus trips from the settled journal (from/to: YYYY-MM-DD, at most 12 months back; default the last month)",
    schema: { querystring: RangeQuery, response: { 200: TripsAnswer } },
    handler: (req, ctx) => cabinetOf(ctx).trips(holderOf(ctx), req.query),
  }),
  route({
    method: 'GET',
    url: '/v1/cabinet/children/:personId/days',
    listeners: HOLDER_LISTENERS,
    access: 'holder',
    summary: "a child's school passages and meals by day (the holder's own child only: auth.forbidden otherwise)",
    schema: { params: ChildParams, querystring: RangeQuery, response: { 200: ChildDaysAnswer } },
    handler: (req, ctx) => cabinetOf(ctx).childDays(holderOf(ctx), req.params.personId, req.query),
  }),
  route({
    method: 'GET',
    url: '/v1/cabinet/debts',
    listeners: HOLDER_LISTENERS,
    access: 'holder',
    summary: "the holder's declined fare charges and how to pay them",
    schema: { response: { 200: DebtsAnswer } },
    handler: (_req, ctx) => cabinetOf(ctx).debts(holderOf(ctx)),
  }),
  route({
    method: 'POST',
    url: '/v1/console/holders/:personId/card',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'staff-assisted connection: an operator connects a card for a person who cannot use ESIA (audited without the number)',
    description: 'Same checks as the cabinet: card.bad-pan, card.bad-expiry (400), cabinet.card-taken (409).',
    schema: { params: HolderParams, body: CardBody, response: { 200: StaffCardAnswer } },
    handler: async (req, ctx) => {
      const out = await cabinetOf(ctx).staffConnect(req.params.personId, req.body, ctx.principal?.name ?? 'operator');
      ctx.audit?.({ masked: out.masked, status: out.result.status });
      return out;
    },
  }),
];
