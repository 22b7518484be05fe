import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import { MeasuresAnswer, PartnersAnswer, SchoolsAnswer } from '../../../protocol/portal-api.js';
import { etagOf, type PortalApi } from '../../portal/queries.js';
import { FileAnswer, route, type HandlerContext, type Listener } from '../route.js';

/**
 * The public portal's JSON routes (issue 15 item 4): no sign-in. Each answer carries an ETag (the SHA-256 of
 * its bytes) and `Cache-Control: public, max-age=60`; a request whose If-None-Match names the current ETag gets
 * 304 without a body. The answer is checked against its schema before it is hashed.
 */
// the public listener (--public-listen), and the operator's (npm start shows everything on one port)
const LISTENERS: readonly Listener[] = ['public', 'operator'];
const DESCRIPTION = 'No sign-in. ETag and Cache-Control: public, max-age=60; If-None-Match with the current ETag answers 304 without a body.';

function portal(ctx: HandlerContext): PortalApi {
  if (!ctx.portal) throw new RcError(ErrorCode.ServerNotFound, 'this server has no public portal');
  return ctx.portal;
}

function cacheable<S extends z.ZodType>(schema: S, answer: z.input<S>, req: { raw: IncomingMessage }, ctx: HandlerContext): FileAnswer {
  const json = JSON.stringify(schema.parse(answer));
  const etag = etagOf(json);
  ctx.http.header('etag', etag);
  ctx.http.header('cache-control', 'public, max-age=60');
  const asked = req.raw.headers['if-none-match'];
  if (asked !== undefined && asked.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
    ctx.http.status(304);
    return new FileAnswer(Buffer.alloc(0), 'application/json; charset=utf-8', null);
  }
  return new FileAnswer(Buffer.from(json), 'application/json; charset=utf-8', null);
}

export const portalRoutes = [
  route({
    method: 'GET',
    url: '/v1/public/partners',
    listeners: LISTENERS,
    access: 'public',
    summary: 'partners with the discount they give residents (and more to holders of some benefit categories)',
    description: DESCRIPTION,
    schema: { response: { 200: PartnersAnswer } },
    handler: (req, ctx) => cacheable(PartnersAnswer, portal(ctx).partners(), req, ctx),
  }),
  route({
    method: 'GET',
    url: '/v1/public/schools',
    listeners: LISTENERS,
    access: 'public',
    summary: 'the schools in the system, with their turnstiles and canteen terminals',
    description: DESCRIPTION,
    schema: { response: { 200: SchoolsAnswer } },
    handler: (req, ctx) => cacheable(SchoolsAnswer, portal(ctx).schools(), req, ctx),
  }),
  route({
    method: 'GET',
    url: '/v1/public/measures',
    listeners: LISTENERS,
    access: 'public',
    summary: 'benefit categories of the published rules and what each gives, in Russian and English words',
    description: DESCRIPTION,
    schema: { response: { 200: MeasuresAnswer } },
    handler: (req, ctx) => cacheable(MeasuresAnswer, portal(ctx).measures(), req, ctx),
  }),
];
