import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, RcError } from '../../protocol/errors.js';

/**
 * Serve the operator console (issue 12) on the operator listener: GET /console/ (index.html), /console/app.js,
 * /console/app.css from the esbuild bundle (scripts/build-console.ts → dist/console/), and / redirects there.
 * Every asset is in the bundle (no CDN, no web fonts), so it works without internet. The files are read once,
 * at start. Without a bundle the API still runs and /console/ answers server.console-missing (503).
 * The pages are public; everything they show comes from the JSON API, which checks the caller's role.
 */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** Where the bundle is: RC_CONSOLE_DIR, else dist/console/ beside the running bundle (dist/*.js) or of the checkout (tsx). */
export function findConsoleDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [env.RC_CONSOLE_DIR, join(here, 'console'), join(here, '..', '..', 'dist', 'console')].filter((d): d is string => !!d);
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? null;
}

/** No inline script or style, nothing from another origin. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function registerConsole(app: FastifyInstance, dir: string | null): void {
  const files = new Map<string, Buffer>();
  if (dir) for (const f of Object.keys(FILES)) if (existsSync(join(dir, f))) files.set(f, readFileSync(join(dir, f)));
  const missing = () =>
    new RcError(ErrorCode.ServerConsoleMissing, 'the operator console is not built on this server (npm run build makes dist/console/)', {
      dir: dir ?? null,
    });
  const send = (name: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    const body = files.get(name);
    if (!body) return reply.code(503).send({ error: missing().toJSON() });
    return reply
      .type(FILES[name]!)
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', name === 'index.html' ? 'no-cache' : 'max-age=300')
      .send(body);
  };
  app.get('/', async (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console', async (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console/', send('index.html'));
  for (const f of Object.keys(FILES)) app.get(`/console/${f}`, send(f));
}
