import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { ErrorAnswer } from '../../protocol/api.js';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';

/**
 * The one mapping of errors to HTTP answers, for both listeners. Every error
 * answer is `{ error: { code, message, context? } }` (protocol/api.ts ErrorAnswer).
 */
function httpStatus(code: ErrorCode): number {
  if (code === ErrorCode.ServerNotFound) return 404;
  if (code === ErrorCode.ServerImportInvalid) return 422;
  if (code === ErrorCode.ServerImportTooLarge) return 413;
  if (code === ErrorCode.ImportBusy) return 409;
  if (code === ErrorCode.ServerNotLeader) return 503;
  if (code === ErrorCode.ServerForbiddenOrigin) return 403;
  if (code === ErrorCode.ServerUnsupportedMedia) return 415;
  if (code === ErrorCode.AuthUnauthenticated || code === ErrorCode.AuthBadCredentials) return 401;
  if (code === ErrorCode.AuthForbidden || code === ErrorCode.AuthCsrf) return 403;
  if (code === ErrorCode.AuthRateLimited) return 429;
  if (code === ErrorCode.AuthUserExists) return 409;
  if (code === ErrorCode.CabinetCardTaken) return 409;
  if (code === ErrorCode.CabinetConnectLocked || code === ErrorCode.CabinetLoginLimited) return 429;
  if (code === ErrorCode.CabinetNoPerson) return 404;
  if (code === ErrorCode.AuthUnknownUser || code === ErrorCode.AuthUnknownToken) return 404;
  // bank API (sync-server/bank/)
  if (code === ErrorCode.BankUnknownCertificate || code === ErrorCode.BankDisabled) return 401;
  if (code === ErrorCode.BankCardConflict || code === ErrorCode.BankPersonHasCard) return 409;
  if (code === ErrorCode.BankIdempotencyConflict || code === ErrorCode.BankUnknownApplicant) return 422;
  if (code === ErrorCode.BankRateLimited) return 429;
  if (code === ErrorCode.BankConnectionNotFound) return 404;
  return 400;
}

const notFound = (req: FastifyRequest) => new RcError(ErrorCode.ServerNotFound, `no such endpoint: ${req.method} ${req.url.split('?')[0]}`);

/** Fastify's own errors (body too large, unparsable, schema validation) as the coded errors the API has always answered. */
export function asRcError(e: unknown, req: FastifyRequest): RcError | null {
  if (isRcError(e)) return e;
  const fe = e as Partial<FastifyError> | null;
  if (fe && hasZodFastifySchemaValidationErrors(fe)) {
    // a path parameter that cannot be an id or kind names no endpoint
    if (fe.validationContext === 'params') return notFound(req);
    const what = fe.validationContext === 'querystring' ? 'request query' : 'request body';
    const issues = fe.validation.slice(0, 5).map((i) => `${i.instancePath.slice(1).replaceAll('/', '.')}: ${i.message}`);
    return new RcError(ErrorCode.ServerBadRequest, `${what} does not match the schema`, { issues });
  }
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new RcError(ErrorCode.ServerBadRequest, 'request body too large', { max: req.routeOptions.bodyLimit });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new RcError(ErrorCode.ServerBadRequest, 'request body is not JSON');
  }
  // anything else Fastify refuses as the client's fault (content length, media type, …)
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)
    return new RcError(ErrorCode.ServerBadRequest, fe.message ?? 'bad request');
  return null;
}

export function errorHandler(log: Logger) {
  return (e: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    // a refused upload is not read: drain it so the answer reaches the client
    if (!req.raw.readableEnded) req.raw.resume();
    const rc = asRcError(e, req);
    if (rc) return reply.code(httpStatus(rc.code)).send({ error: rc.toJSON() } satisfies ErrorAnswer);
    log.error({ err: String(e), url: req.routeOptions.url }, 'http handler failed');
    return reply.code(500).send({ error: { code: ErrorCode.ServerInternal, message: 'internal error' } } satisfies ErrorAnswer);
  };
}

export function notFoundHandler(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (!req.raw.readableEnded) req.raw.resume();
  return reply.code(404).send({ error: notFound(req).toJSON() } satisfies ErrorAnswer);
}
