import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { ErrorAnswer } from '../../protocol/api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import { errorHandler, notFoundHandler } from './errors.js';
import type { HttpContext, Listener, Route } from './route.js';

export interface AppOptions {
  /** The listener this instance serves (its routes from the table), or 'all' (the OpenAPI document). */
  listener: Listener | 'all';
  /** Largest JSON body, in bytes (CSV uploads are streamed, without a limit). */
  bodyLimit: number;
  log: Logger;
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

/** A Fastify instance serving the routes of one listener, with the zod type provider and the one error mapping. */
export async function buildApp(routes: readonly Route[], ctx: HttpContext | null, o: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({ bodyLimit: o.bodyLimit, exposeHeadRoutes: false, forceCloseConnections: true, logger: false });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler(o.log));
  app.setNotFoundHandler(notFoundHandler);
  if (o.before) await o.before(app);
  const mine = routes.filter((r) => o.listener === 'all' || r.listeners.includes(o.listener));
  const add = (scope: FastifyInstance, r: Route) => {
    const listener: Listener = o.listener === 'all' ? r.listeners[0]! : o.listener;
    scope.route({
      method: r.method,
      url: r.url,
      schema: {
        ...r.schema,
        response: { ...r.schema.response, default: ErrorAnswer },
        summary: r.summary,
        ...(r.description ? { description: r.description } : {}),
        tags: [...r.listeners],
        ...(r.csv ? { consumes: ['text/csv'] } : {}),
      },
      handler: async (req) => {
        if (!ctx) throw new Error('this instance only describes the API');
        return r.handler({ body: req.body as undefined, query: req.query as undefined, params: req.params as undefined, raw: req.raw }, { ...ctx, listener });
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
  return { url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`, close: () => app.close() };
}
