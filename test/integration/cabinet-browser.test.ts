import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPublicWeb } from '../../scripts/build-console.js';
import { startStack, type Stack } from '../support/sync-harness.js';

/**
 * The cardholder's cabinet (issue 15 item 2) in Debian's headless Chromium on a 390×844 phone screen.
 * RC_UPDATE_SCREENSHOT=1 writes docs/img/cabinet-*.png (the README shows them).
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SHOTS = process.env.RC_UPDATE_SCREENSHOT === '1';
const PHONE = { width: 390, height: 844 };

let stack: Stack;
let ctx: BrowserContext | null = null;
let dir = '';

async function open(path = '/cabinet/'): Promise<Page> {
  const page = await ctx!.newPage();
  await page.setViewportSize(PHONE);
  await page.goto(`${stack.server.httpUrl}${path}`);
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  const out = join(import.meta.dirname, '..', '..', 'docs', 'img');
  mkdirSync(out, { recursive: true });
  await page.screenshot({ path: join(out, `cabinet-${name}.png`) });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rc-cabinet-browser-'));
  await buildPublicWeb(join(dir, 'web'));
  stack = await startStack('embedded', { webDir: join(dir, 'web') });
  ctx = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await ctx?.close().catch(() => undefined);
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the cabinet is an installable PWA', () => {
  it('serves its manifest (name, start URL, scope, standalone, 192 and 512 px icons) and the icons', async () => {
    const res = await fetch(`${stack.server.httpUrl}/cabinet/manifest.webmanifest`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/manifest+json');
    const m = (await res.json()) as { name: string; start_url: string; scope: string; display: string; icons: { src: string; sizes: string; type: string }[] };
    expect(m).toMatchObject({ start_url: '/cabinet/', scope: '/cabinet/', display: 'standalone' });
    expect(m.icons.map((i) => i.sizes)).toEqual(['192x192', '512x512']);
    for (const i of m.icons) {
      const icon = await fetch(`${stack.server.httpUrl}/cabinet/${i.src}`);
      expect(icon.headers.get('content-type')).toBe('image/png');
      const png = Buffer.from(await icon.arrayBuffer());
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.readUInt32BE(16)).toBe(Number(i.sizes.split('x')[0])); // IHDR width
    }
  });

  it('registers its service worker, and the shell opens offline and says so', async () => {
    const page = await open();
    await page.locator('[data-test=signin]').waitFor();
    expect(await page.locator('link[rel=manifest]').getAttribute('href')).toBe('manifest.webmanifest');
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    expect(scope).toBe(`${stack.server.httpUrl}/cabinet/`);
    // the worker controls the page once it is active (clients.claim), then the network goes away
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await shot(page, 'signin');
    await ctx!.setOffline(true);
    try {
      await page.reload();
      await page.locator('[data-test=offline]').waitFor();
      await page.locator('[data-test=signin]').waitFor();
      expect(await page.locator('[data-test=login]').getAttribute('aria-disabled')).toBe('true');
    } finally {
      await ctx!.setOffline(false);
    }
    // the worker keeps the shell only: nothing of the API is in its cache
    const kept = await page.evaluate(async () => {
      const out: string[] = [];
      for (const name of await caches.keys()) for (const r of await (await caches.open(name)).keys()) out.push(new URL(r.url).pathname);
      return out;
    });
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((p) => p.startsWith('/cabinet/'))).toBe(true);
    await page.close();
  });
});
