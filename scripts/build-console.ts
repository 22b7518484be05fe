import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * The operator console's bundle (issue 12): sync-server/console/web/main.ts and its CSS, bundled by esbuild
 * into `outDir` (dist/console/ by `npm run build`) as app.js + app.css + index.html. Everything is in the
 * bundle: no CDN, no web fonts, so the console works without internet.
 */
export async function buildConsole(outDir: string, src = join(import.meta.dirname, '..', 'sync-server', 'console', 'web')): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(src, 'main.ts') },
    outdir: outDir,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(join(src, 'index.html'), join(outDir, 'index.html'));
}
