import { ChargingRunAnswer, DeclineBody, OkAnswer, RepayAnswer, RepayBody } from '../../../protocol/api.js';
import { route } from '../route.js';

/** Deferred charging of full fares: thin, the work is in charging.ts. */
export const chargingRoutes = [
  route({
    method: 'POST',
    url: '/v1/charging/run',
    listeners: ['operator'],
    summary: 'settle pending charges now',
    schema: { response: { 200: ChargingRunAnswer } },
    handler: (_req, { api }) => api.chargingRun(),
  }),
  route({
    method: 'POST',
    url: '/v1/charging/decline',
    listeners: ['operator'],
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
    summary: 'record a repayment: declined charges are settled and the card leaves the stop-list',
    schema: { body: RepayBody, response: { 200: RepayAnswer } },
    handler: (req, { api }) => api.repay(req.body.token),
  }),
];
