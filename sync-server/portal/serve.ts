import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, RcError } from '../../protocol/errors.js';

/**
 * Serve the cardholder's cabinet (/cabinet/, a PWA: manifest, icons, service worker) and the public portal (/portal/)
 * from their esbuild bundles (scripts/build-console.ts → dist/cabinet/, dist/portal/). The files are read once, at
 * start; without a bundle the JSON API still runs and the pages answer server.web-missing (503). The pages are
 * public; everything personal comes from the cabinet's JSON API, which checks the holder's session.
 */
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  webmanifest: 'application/manifest+json; charset=utf-8',
  png: 'image/png',
};
const APPS = {
  cabinet: ['index.html', 'app.js', 'app.css', 'sw.js', 'manifest.webmanifest', 'icon-192.png', 'icon-512.png'],
  portal: ['index.html', 'app.js', 'app.css', 'icon-192.png'],
} as const;

/** Where the bundles are (a dir holding cabinet/ and portal/): RC_WEB_DIR, else dist/ beside the running bundle (dist/*.js) or of the checkout (tsx). */
export function findWebDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [env.RC_WEB_DIR, here, join(here, '..', '..', 'dist')].filter((d): d is string => !!d);
  return candidates.find((d) => existsSync(join(d, 'cabinet', 'index.html'))) ?? null;
}

/** No inline script or style, nothing from another origin; the manifest and the service worker from this origin only. */
export const WEB_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function registerWeb(app: FastifyInstance, dir: string | null): void {
  for (const [name, files] of Object.entries(APPS)) {
    const bytes = new Map<string, Buffer>();
    if (dir) for (const f of files) if (existsSync(join(dir, name, f))) bytes.set(f, readFileSync(join(dir, name, f)));
    const send = (file: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
      const body = bytes.get(file);
      if (!body) {
        const e = new RcError(ErrorCode.ServerWebMissing, `the ${name} pages are not built on this server (npm run build makes dist/${name}/)`, {
          dir: dir ?? null,
        });
        return reply.code(503).send({ error: e.toJSON() });
      }
      // the page and the service worker are checked every time (a new version shows at once); the rest for five minutes
      const fresh = file === 'index.html' || file === 'sw.js' || file === 'manifest.webmanifest';
      return reply
        .type(TYPES[file.slice(file.lastIndexOf('.') + 1)]!)
        .header('content-security-policy', WEB_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', fresh ? 'no-cache' : 'max-age=300')
        .send(body);
    };
    app.get(`/${name}`, async (_req, reply) => reply.redirect(`/${name}/`, 302));
    app.get(`/${name}/`, send('index.html'));
    for (const f of files) app.get(`/${name}/${f}`, send(f));
  }
}
