import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import { ErrorCode, RcError, isRcError } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import { TokenHex } from '../protocol/lists.js';
import type { CsvSource } from './csv.js';
import { RulesFile } from '../protocol/rules-schema.js';
import { IMPORT_KINDS, type ImportKind, type ImportReport } from './import.js';

/** What the HTTP API needs from the running server. */
export interface Api {
  importCsv(kind: ImportKind, csv: CsvSource, skipInvalid: boolean): Promise<{ report: ImportReport; versions: Record<string, number> }>;
  status(): unknown;
  /** Whole entries with both decisions (settlement/queries.ts JournalView); `flagged`: only those left out of settlement. */
  journal(device: string | undefined, limit: number, flagged?: boolean): unknown;
  /** Aggregated charges, one per card and service day (settlement/queries.ts ChargeView). */
  charges(status: string | undefined, limit: number): unknown;
  setConfig(name: string, rules: unknown): Promise<{ name: string; version: number }>;
  chargingRun(): Promise<{ declined: number }>;
  chargingDecline(tokens: string[]): void;
  repay(token: string): Promise<{ settled: number; unblocked: boolean }>;
  publicKeyPem: string;
  info(): unknown;
}

const ConfigBody = z.object({ name: z.string().regex(/^[a-z0-9_-]{1,64}$/).default('rules'), rules: RulesFile });
const DeclineBody = z.object({ tokens: z.array(TokenHex).max(100_000) });
const RepayBody = z.object({ token: TokenHex });

/** Read a request body as JSON, refusing more than `max` bytes (server.bad-request). */
export async function readJson(req: IncomingMessage, max = 1 << 20): Promise<unknown> {
  let size = 0;
  const parts: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw new RcError(ErrorCode.ServerBadRequest, 'request body too large', { max });
    parts.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new RcError(ErrorCode.ServerBadRequest, 'request body is not JSON');
  }
}

function parse<T>(schema: z.ZodType<T>, v: unknown): T {
  const r = schema.safeParse(v);
  if (!r.success) throw new RcError(ErrorCode.ServerBadRequest, 'request body does not match the schema', { issues: r.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) });
  return r.data;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

/** Extra routes (provisioning): answer a request, or undefined when the path is not theirs. */
export type ExtraRoutes = (method: string, path: string, body: () => Promise<unknown>) => Promise<unknown> | undefined;

export function createHttpApi(api: Api, log: Logger, extra?: ExtraRoutes): Server {
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const p = url.pathname;
      try {
        if (req.method === 'GET' && p === '/v1/health') return send(res, 200, api.info());
        if (req.method === 'GET' && p === '/v1/public-key') return send(res, 200, { pem: api.publicKeyPem });
        if (req.method === 'GET' && p === '/v1/status') return send(res, 200, api.status());
        if (req.method === 'GET' && p === '/v1/journal') {
          const limit = Math.min(100_000, Math.max(1, Number(url.searchParams.get('limit') ?? 1000) || 1000));
          return send(res, 200, api.journal(url.searchParams.get('device') ?? undefined, limit, url.searchParams.get('flagged') === '1'));
        }
        if (req.method === 'GET' && p === '/v1/charging') {
          const limit = Math.min(100_000, Math.max(1, Number(url.searchParams.get('limit') ?? 1000) || 1000));
          return send(res, 200, api.charges(url.searchParams.get('status') ?? undefined, limit));
        }
        const im = /^\/v1\/import\/([a-z]+)$/.exec(p);
        if (req.method === 'POST' && im) {
          const kind = im[1] as ImportKind;
          if (!IMPORT_KINDS.includes(kind)) throw new RcError(ErrorCode.ServerNotFound, `unknown import kind ${kind}`, { kinds: IMPORT_KINDS });
          // the raw body, streamed to the CSV parser (its limits apply before anything big is built);
          // an upload cut short must not import the part that arrived
          const lines = (async function* () {
            for await (const chunk of req) yield chunk as Buffer;
            if (!req.complete) throw new RcError(ErrorCode.ServerBadRequest, 'upload interrupted: nothing imported');
          })();
          const skip = url.searchParams.get('skipInvalid') === 'true';
          return send(res, 200, await api.importCsv(kind, lines, skip));
        }
        if (req.method === 'POST' && p === '/v1/config') {
          const b = parse(ConfigBody, await readJson(req));
          return send(res, 200, await api.setConfig(b.name, b.rules));
        }
        if (req.method === 'POST' && p === '/v1/charging/run') return send(res, 200, await api.chargingRun());
        if (req.method === 'POST' && p === '/v1/charging/decline') {
          api.chargingDecline(parse(DeclineBody, await readJson(req)).tokens);
          return send(res, 200, { ok: true });
        }
        if (req.method === 'POST' && p === '/v1/charging/repay') return send(res, 200, await api.repay(parse(RepayBody, await readJson(req)).token));
        const ex = extra?.(req.method ?? 'GET', p, () => readJson(req));
        if (ex) return send(res, 200, await ex);
        throw new RcError(ErrorCode.ServerNotFound, `no such endpoint: ${req.method} ${p}`);
      } catch (e) {
        if (isRcError(e)) {
          const status = e.code === ErrorCode.ServerNotFound ? 404 : e.code === ErrorCode.ServerImportInvalid ? 422 : e.code === ErrorCode.ServerImportTooLarge ? 413 : 400;
          if (!req.readableEnded) req.resume();
          return send(res, status, { error: e.toJSON() });
        }
        log.error({ err: String(e) }, 'http handler failed');
        return send(res, 500, { error: { code: ErrorCode.ServerInternal, message: 'internal error' } });
      }
    })();
  });
}
