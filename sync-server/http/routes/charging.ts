import { READERS, WRITERS } from '../../../protocol/roles.js';
import { ChargesAnswer, ChargesQuery, ChargingRunAnswer, DeclineBody, journalLimit, OkAnswer, RepayAnswer, RepayBody } from '../../../protocol/api.js';
import { route } from '../route.js';

/** Deferred charging of full fares: thin, the work is in charging.ts. */
export const chargingRoutes = [
  route({
    method: 'GET',
    url: '/v1/charging',
    listeners: ['operator'],
    access: READERS,
    summary: 'aggregated charges: one per card per closed service day, for the settled amount',
    schema: { querystring: ChargesQuery, response: { 200: ChargesAnswer } },
    handler: (req, { api }) => api.charges(req.query.status, journalLimit(req.query.limit)),
  }),
  route({
    method: 'POST',
    url: '/v1/charging/run',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'settle the journal, close ended service days and charge them now',
    schema: { response: { 200: ChargingRunAnswer } },
    handler: (_req, { api }) => api.chargingRun(),
  }),
  route({
    method: 'POST',
    url: '/v1/charging/decline',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'simulator: decline the charges of these tokens',
    schema: { body: DeclineBody, response: { 200: OkAnswer } },
    handler: (req, { api }) => {
      api.chargingDecline(req.body.tokens);
      return { ok: true as const };
    },
  }),
  route({
    method: 'POST',
    url: '/v1/charging/repay',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'record a repayment: declined charges are settled and the card leaves the stop-list',
    schema: { body: RepayBody, response: { 200: RepayAnswer } },
    handler: (req, { api }) => api.repay(req.body.token),
  }),
];
