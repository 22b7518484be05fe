import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build as attendance } from '../../sync-server/reports/attendance.js';
import { build as meals } from '../../sync-server/reports/meals.js';
import { render } from '../../sync-server/reports/render/index.js';
import { launchChromium } from '../support/browser.js';
import { pngInkShare } from '../support/png.js';
import { monthOfGateTaps, rosterOf, schoolRegistry, uploadSchool, type SchoolRegistry } from '../support/school-journal.js';

/**
 * The school reports as people see them: the HTML in Debian's headless
 * Chromium (playwright-core) and the PDF through pdftoppm, both checked not
 * blank, from a month of a 30-student school's journal made through the real
 * ingest. RC_UPDATE_SCREENSHOT=1 saves the attendance screenshot to
 * docs/img/report-attendance.png (the one the README shows).
 */

let reg: SchoolRegistry | null = null;
let ctx: BrowserContext | null = null;
let dir = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rc-reports-browser-'));
  reg = await schoolRegistry(30, rosterOf(30));
  uploadSchool(reg, monthOfGateTaps(30));
  // a fresh --user-data-dir: launchPersistentContext takes the profile folder and owns the browser process
  ctx = await launchChromium(join(dir, 'profile'), {
    args: ['--disable-quic'],
    viewport: { width: 1000, height: 1400 },
    offline: true,
  });
}, 60_000);
afterAll(async () => {
  await ctx?.close().catch(() => undefined);
  reg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function open() {
  if (!ctx) throw new Error('the browser did not start');
  return ctx.newPage();
}
function school(): SchoolRegistry {
  if (!reg) throw new Error('no registry');
  return reg;
}

describe('school reports in a real browser and a real PDF rasteriser', () => {
  it('the attendance HTML renders in headless Chromium with its chart and tables, not blank, and asks for nothing from the network', async () => {
    const html = await render(attendance(school().db, { school: 'S1', month: '2026-11' }), 'html');
    const page = await open();
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('data:') && r.url() !== 'about:blank') requests.push(r.url());
    });
    await page.setContent(html.toString('utf8'), { waitUntil: 'load' });
    expect(await page.locator('svg rect[fill="#1f77b4"]').count()).toBeGreaterThan(15); // a bar per school day present
    expect(await page.locator('section#students tbody tr').count()).toBe(31); // 30 students and the totals
    expect(await page.locator('h1').innerText()).toContain('Посещаемость');
    const shot = await page.screenshot({ fullPage: false, type: 'png' });
    const ink = pngInkShare(shot);
    expect(ink.width).toBe(1000);
    expect(ink.share).toBeGreaterThan(0.02);
    expect(requests).toEqual([]);
    if (process.env.RC_UPDATE_SCREENSHOT === '1') {
      mkdirSync('docs/img', { recursive: true });
      writeFileSync('docs/img/report-attendance.png', shot);
    }
    await page.close();
  }, 60_000);

  it('the meals HTML renders in headless Chromium, not blank', async () => {
    const html = await render(meals(school().db, { school: 'S1', month: '2026-11' }), 'html');
    const page = await open();
    await page.setContent(html.toString('utf8'), { waitUntil: 'load' });
    expect(await page.locator('section#subsidy').count()).toBe(1);
    expect(pngInkShare(await page.screenshot({ type: 'png' })).share).toBeGreaterThan(0.01);
    await page.close();
  }, 60_000);

  it('the attendance PDF rasterised by pdftoppm: every page has ink, the first has the chart', async () => {
    const pdf = await render(attendance(school().db, { school: 'S1', month: '2026-11' }), 'pdf');
    const out = join(dir, 'pdf');
    mkdirSync(out);
    writeFileSync(join(out, 'a.pdf'), pdf);
    execFileSync('pdftoppm', ['-png', '-r', '40', join(out, 'a.pdf'), join(out, 'page')]);
    const pages = readdirSync(out)
      .filter((f) => f.endsWith('.png'))
      .sort();
    expect(pages.length).toBeGreaterThan(1);
    const shares = pages.map((p) => pngInkShare(readFileSync(join(out, p))).share);
    for (const s of shares) expect(s).toBeGreaterThan(0.005);
    expect(shares[0]).toBeGreaterThan(0.03); // the chart's bars
  }, 60_000);
});
