import type { AddressInfo } from 'node:net';
import fastifyCookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { ErrorAnswer } from '../../protocol/api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import { callState, holderState, installAuth } from '../auth/hook.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { FileAnswer, type Exchange, type HttpContext, type Listener, type Route } from './route.js';

export interface AppOptions {
  /** The listener this instance serves (its routes from the table), or 'all' (the OpenAPI document). */
  listener: Listener | 'all';
  /** Largest JSON body, in bytes (CSV uploads are streamed, without a limit). */
  bodyLimit: number;
  log: Logger;
  /** Serve HTTPS with this certificate chain and key (the enrolment listener, issue 13 item 9). */
  https?: { cert: string; key: string };
  /** Called before the routes are added (the OpenAPI generator registers @fastify/swagger there). */
  before?: (app: FastifyInstance) => Promise<void>;
}

/** The request body of a JSON route: whatever the content type says, it is JSON (as it always was). */
function parseJson(req: { routeOptions: { schema?: { body?: unknown } } }, body: string | Buffer): unknown {
  // a route without a body ignores one
  if (!req.routeOptions.schema?.body) return undefined;
  try {
    return JSON.parse(body.toString());
  } catch {
    throw new RcError(ErrorCode.ServerBadRequest, 'request body is not JSON');
  }
}

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];

/** The request's socket address as it appears in a Host header (IPv6 in brackets, IPv4-mapped unwrapped). */
function hostOf(addr: string | undefined): string | null {
  if (!addr) return null;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a.includes(':') ? `[${a}]` : a;
}

/** The media type of a Content-Type header, lower case without parameters; null when there is none. */
function mediaType(v: string | undefined): string | null {
  if (v === undefined) return null;
  return v.split(';')[0]!.trim().toLowerCase();
}

/**
 * The operator listener's guard (issue 13 item 10), run before anything else:
 *  - Host must be the listener's own address or a loopback name, with its port (DNS rebinding);
 *  - an Origin header must be that same http origin, and Sec-Fetch-Site must not be cross-site or same-site
 *    (a web page of another site in the operator's browser);
 *  - a body must be application/json on JSON routes and text/csv on the CSV import (no "simple" text/plain
 *    or form posts). A request without a Content-Type is parsed as before: browsers always send Origin on a POST.
 * Refusals are coded: server.forbidden-origin (403), server.unsupported-media-type (415).
 */
function operatorGuard(req: FastifyRequest): void {
  const port = req.socket.localPort;
  const allowed = new Set([...LOOPBACK_HOSTS, hostOf(req.socket.localAddress)].filter((h): h is string => h !== null).map((h) => `${h}:${port}`));
  const host = req.headers.host?.toLowerCase();
  if (!host || !allowed.has(host)) throw new RcError(ErrorCode.ServerForbiddenOrigin, 'the Host header is not this server', { host: host ?? null });
  const origin = req.headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== `http://${host}`)
    throw new RcError(ErrorCode.ServerForbiddenOrigin, 'requests from another origin are refused', { origin });
  const site = req.headers['sec-fetch-site'];
  // the identity provider sends the browser back to the cabinet's sign-in callback: a cross-site top-level GET
  const signIn = req.method === 'GET' && req.routeOptions.url === '/v1/cabinet/callback';
  if ((site === 'cross-site' || site === 'same-site') && !signIn)
    throw new RcError(ErrorCode.ServerForbiddenOrigin, 'requests from another site are refused', { site });
  const type = mediaType(req.headers['content-type']);
  if (type === null) return;
  const csv = (req.routeOptions.schema as { consumes?: string[] } | undefined)?.consumes?.includes('text/csv') === true;
  const want = csv ? 'text/csv' : 'application/json';
  if (type !== want) throw new RcError(ErrorCode.ServerUnsupportedMedia, `this endpoint takes ${want}, not ${type}`, { contentType: type, expected: want });
}

/** The handler's view of the exchange (cookies, answer headers). Cookies are always HttpOnly, SameSite=Strict, Path=/ and Secure (loopback counts as secure for browsers). */
function exchange(req: FastifyRequest, reply: FastifyReply): Exchange {
  return {
    ip: req.ip,
    cookie: (name) => req.cookies[name],
    setCookie: (name, value, maxAgeSec, opt) => {
      const o = { httpOnly: true, sameSite: opt?.lax ? 'lax' : 'strict', path: '/', secure: true } as const;
      if (maxAgeSec > 0) void reply.setCookie(name, value, { ...o, maxAge: maxAgeSec });
      else void reply.clearCookie(name, o);
    },
    header: (name, value) => void reply.header(name, value),
    status: (code) => void reply.code(code),
  };
}

/** A Fastify instance serving the routes of one listener, with the zod type provider and the one error mapping. */
export async function buildApp(routes: readonly Route[], ctx: HttpContext | null, o: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: o.bodyLimit,
    exposeHeadRoutes: false,
    forceCloseConnections: true,
    logger: false,
    ...(o.https ? { https: { ...o.https, minVersion: 'TLSv1.2' as const } } : {}),
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler(o.log));
  app.setNotFoundHandler(notFoundHandler);
  if (o.before) await o.before(app);
  if (o.listener === 'operator') app.addHook('onRequest', async (req) => operatorGuard(req));
  await app.register(fastifyCookie);
  // who may call each route (its `access`), and the audit log of what they changed (sync-server/auth/hook.ts)
  if (ctx) installAuth(app, ctx.auth, ctx.cabinet ?? null);
  const mine = routes.filter((r) => o.listener === 'all' || r.listeners.includes(o.listener));
  const add = (scope: FastifyInstance, r: Route) => {
    const listener: Listener = o.listener === 'all' ? r.listeners[0]! : o.listener;
    scope.route({
      method: r.method,
      url: r.url,
      config: { access: r.access },
      schema: {
        ...r.schema,
        response: { ...r.schema.response, default: ErrorAnswer },
        summary: r.summary,
        ...(r.description ? { description: r.description } : {}),
        tags: [...r.listeners],
        ...(r.csv ? { consumes: ['text/csv'] } : {}),
      },
      handler: async (req, reply) => {
        if (!ctx) throw new Error('this instance only describes the API');
        const call = callState(req);
        const out: unknown = await r.handler(
          { body: req.body as undefined, query: req.query as undefined, params: req.params as undefined, raw: req.raw },
          {
            ...ctx,
            listener,
            principal: call?.principal ?? null,
            holder: holderState(req) ?? null,
            ...(call ? { audit: (d: Record<string, unknown>) => void Object.assign(call.detail, d) } : {}),
            http: exchange(req, reply),
          },
        );
        // a file (report downloads): its bytes as they are, with their type and file name
        if (out instanceof FileAnswer) {
          if (out.fileName !== null) void reply.header('content-disposition', `attachment; filename="${out.fileName}"`);
          return reply.type(out.contentType).send(out.bytes);
        }
        return out;
      },
    });
  };
  // JSON routes: every content type is parsed as JSON, within the body limit
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
      try {
        done(null, parseJson(req, body));
      } catch (e) {
        done(e as Error, undefined);
      }
    });
    for (const r of mine.filter((x) => !x.csv)) add(scope, r);
  });
  // CSV uploads: the handler reads the request stream itself
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    for (const r of mine.filter((x) => x.csv)) add(scope, r);
  });
  await app.ready();
  return app;
}

export interface Listening {
  url: string;
  close(): Promise<void>;
}

/** Build the listener's app and listen on host:port (0 = any free port). */
export async function startListener(
  routes: readonly Route[],
  ctx: HttpContext,
  o: AppOptions & { listener: Listener; host: string; port: number },
): Promise<Listening> {
  const app = await buildApp(routes, ctx, o);
  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (e) {
    await app.close();
    const err = e as NodeJS.ErrnoException;
    throw new RcError(ErrorCode.ServerBadRequest, `cannot listen on ${o.host}:${o.port}: ${err.code ?? err.message}`);
  }
  const a = app.server.address() as AddressInfo;
  return { url: `${o.https ? 'https' : 'http'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`, close: () => app.close() };
}
