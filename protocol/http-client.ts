import type { ClientRequest } from 'node:http';
import type { z } from 'zod';
import { ErrorAnswer } from './api.js';
import { ErrorCode, RcError } from './errors.js';

/**
 * The half of a JSON-over-HTTP client that the technician's tool (provisioning/http.ts) and the server's CLI
 * (sync-server/commands/client.ts) share: read an answer as JSON, turn an error answer into its RcError, check a
 * success answer against its schema. Each caller keeps its own transport (TLS pinning and timeouts, a CSV body
 * streamed, the API token) and its own words for a server it cannot reach.
 */
export interface JsonAnswer {
  status: number;
  json: unknown;
}

export interface ExchangeErrors {
  /** The request failed: refused, timed out, a certificate refused. */
  connection: (e: NodeJS.ErrnoException) => RcError;
  /** The answer came but is not JSON (not a Resident Card server?). */
  notJson: (status: number | undefined) => RcError;
  /** The connection broke while the answer came in; `connection` when not given. */
  broken?: (e: Error) => RcError;
}

/** Send `req` (`send` writes the body, if any, and ends it) and read its answer, whatever the status, as JSON. */
export function exchangeJson(req: ClientRequest, errors: ExchangeErrors, send: (req: ClientRequest) => void): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 500, json: JSON.parse(Buffer.concat(parts).toString('utf8')) });
        } catch {
          reject(errors.notJson(res.statusCode));
        }
      });
      res.on('error', (e) => reject((errors.broken ?? errors.connection)(e)));
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(errors.connection(e)));
    send(req);
  });
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));
const isErrorCode = (c: string): c is ErrorCode => KNOWN_CODES.has(c);

/**
 * An error answer (HTTP 400 and above, protocol/api.ts ErrorAnswer) as its RcError: the server's code when this
 * version knows it, else server.bad-request; an answer that is no ErrorAnswer is server.bad-request `HTTP <status>`.
 */
export function answerError(status: number, json: unknown): RcError {
  const e = ErrorAnswer.safeParse(json);
  if (!e.success) return new RcError(ErrorCode.ServerBadRequest, `HTTP ${status}`);
  const { code, message, context } = e.data.error;
  return new RcError(isErrorCode(code) ? code : ErrorCode.ServerBadRequest, message, context);
}

/** A success answer checked against its schema; `mismatch` is the server.bad-request message when it does not match (the two ends' versions differ). */
export function parseAnswer<T>(schema: z.ZodType<T>, json: unknown, mismatch: string): T {
  const p = schema.safeParse(json);
  if (!p.success)
    throw new RcError(ErrorCode.ServerBadRequest, mismatch, { issues: p.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`) });
  return p.data;
}
