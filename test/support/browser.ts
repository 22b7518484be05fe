import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's headless Chromium (playwright-core, no downloaded browser) for the browser tests: one set of flags that
 * keeps it from phoning home (updates, sync, background networking) and lets it run as root in a container.
 */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A phone-sized screen (the cabinet, the portal and the console's narrow layout are checked at it). */
export const PHONE = { width: 390, height: 844 };

type LaunchOptions = NonNullable<Parameters<typeof chromium.launchPersistentContext>[1]>;

/**
 * Starts Chromium on a fresh profile folder (`--user-data-dir`; Chromium creates it, the test removes it with its
 * scratch folder). The context owns the browser process: `ctx.close()` ends it. `opts.args` are added to the usual
 * flags; the rest (viewport, offline, …) go to Playwright as they are.
 */
export async function launchChromium(profileDir: string, opts: Omit<LaunchOptions, 'executablePath' | 'headless'> = {}): Promise<BrowserContext> {
  const { args = [], ...rest } = opts;
  return chromium.launchPersistentContext(profileDir, { ...rest, executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...args] });
}

/** RC_UPDATE_SCREENSHOT=1 writes the page to docs/img/`file` (the README shows those); otherwise nothing. */
const SHOTS = process.env.RC_UPDATE_SCREENSHOT === '1';
export async function docsScreenshot(page: Page, file: string): Promise<void> {
  if (!SHOTS) return;
  const out = join(import.meta.dirname, '..', '..', 'docs', 'img');
  mkdirSync(out, { recursive: true });
  await page.screenshot({ path: join(out, file) });
}
