import { Connection, ConnectionParams, ConnectionRequest, PublicBanksAnswer } from '../../../protocol/bank-api.js';
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import type { BankService } from '../../bank/service.js';
import { route, type HandlerContext, type RouteRequest } from '../route.js';

/**
 * The bank connection API (issue 15 item 3; sync-server/bank/, docs/bank-api.md): on the bank listener only
 * (--bank-listen, mutual TLS). The bank is its client certificate (access 'bank'): identified per request by the
 * certificate's SHA-256 fingerprint, then rate-limited per bank (429 bank.rate-limited with Retry-After).
 */
function bankOf(ctx: HandlerContext): BankService {
  if (!ctx.bank) throw new RcError(ErrorCode.ServerBadRequest, 'the bank API is not available on this server');
  return ctx.bank;
}

function caller(req: RouteRequest<{ response: { 200: typeof Connection } }>, ctx: HandlerContext) {
  const bank = bankOf(ctx);
  const who = bank.identify(req.raw);
  const wait = bank.admit(who.id);
  if (wait > 0) {
    ctx.http.header('retry-after', String(wait));
    throw new RcError(ErrorCode.BankRateLimited, `too many requests from bank ${who.id}: retry in ${wait} s`, { retryAfter: wait });
  }
  return { bank, who };
}

export const bankRoutes = [
  route({
    method: 'POST',
    url: '/v1/bank/connections',
    listeners: ['bank'],
    access: 'bank',
    summary: "connect an applicant's card (or replace their card): tokenised on arrival, idempotent by the Idempotency-Key header",
    description:
      'Header Idempotency-Key (required, 8..128 printable characters): the same key with the same body answers the stored answer and changes nothing; ' +
      'with another body, 422 bank.idempotency-conflict. A key is remembered for 24 h, then it is a new request. 409 bank.card-conflict: the card is connected to another person; 409 bank.person-has-card: ' +
      'the person has another active card and replace is not true (context.currentMasked). 400 card.bad-pan / card.bad-expiry. 429 bank.rate-limited (Retry-After).',
    schema: { body: ConnectionRequest, response: { 200: Connection } },
    handler: (req, ctx) => {
      const { bank, who } = caller(req, ctx);
      const h = req.raw.headers['idempotency-key'];
      const a = bank.connect(who, Array.isArray(h) ? h[0] : h, req.body);
      if ('body' in a) return a.body;
      throw new RcError(a.error.code as ErrorCode, a.error.message, a.error.context);
    },
  }),
  route({
    method: 'GET',
    url: '/v1/bank/connections/:id',
    listeners: ['bank'],
    access: 'bank',
    summary: "a connection's status: accepted, active (in the published transit list, listVersion), replaced, stopped",
    schema: { params: ConnectionParams, response: { 200: Connection } },
    handler: (req, ctx) => {
      const { bank, who } = caller(req, ctx);
      return bank.get(who, req.params.id);
    },
  }),
  route({
    method: 'GET',
    url: '/v1/public/banks',
    listeners: ['public'],
    access: 'public',
    summary: 'the banks through which a card can be connected (not disabled): id, name, site, since',
    schema: { response: { 200: PublicBanksAnswer } },
    handler: (_req, ctx) => bankOf(ctx).publicBanks(),
  }),
];
