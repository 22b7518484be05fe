import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPublicWeb } from '../../scripts/build-console.js';
import { docsScreenshot, launchChromium, PHONE } from '../support/browser.js';
import { importText, startStack, type Stack } from '../support/sync-harness.js';

/**
 * The public portal (issue 15 item 4) in Debian's headless Chromium on a phone-sized screen: measures in words from
 * the published rules, partners with their discounts, schools, the banks page, the language switch; no sign-in.
 * RC_UPDATE_SCREENSHOT=1 writes docs/img/cabinet-portal.png.
 */

let stack: Stack;
let ctx: BrowserContext | null = null;
let dir = '';

async function open(hash = ''): Promise<Page> {
  const page = await ctx!.newPage();
  await page.setViewportSize(PHONE);
  await page.goto(`${stack.server.httpUrl}/portal/${hash}`);
  return page;
}

describe('public portal in the browser', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rc-portal-browser-'));
    await buildPublicWeb(join(dir, 'web'));
    stack = await startStack('embedded', { webDir: join(dir, 'web') });
    await stack.server.api.setConfig('rules', JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'portal', 'rules.json'), 'utf8')) as unknown);
    await importText(stack, 'partners', 'partner_id,partner_name,category,discount\nP1,Национальный музей,museum,10\nP2,Магазин «Степь»,shop,3\n');
    await importText(
      stack,
      'enrolments',
      'person_id,school_id,role,grade,meal_category,valid_from,valid_to\np1,S7,student,3,,2026-09-01,2027-05-31\np2,S12,student,5,,2026-09-01,2027-05-31\n',
    );
    ctx = await launchChromium(join(dir, 'profile'));
  }, 120_000);

  afterAll(async () => {
    await ctx?.close().catch(() => undefined);
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('measures: each category named, with what it gives on the bus and at partners', async () => {
    const page = await open();
    const items = page.locator('[data-test=measure]');
    await items.first().waitFor();
    expect(await items.count()).toBe(3);
    expect(await page.locator('[data-test=measure][data-category=pensioner]').innerText()).toContain('Бесплатный проезд');
    expect(await page.locator('[data-test=measure][data-category=pensioner]').innerText()).toContain('Скидка 50% у партнёров');
    expect(await page.locator('[data-test=measure][data-category=student]').innerText()).toContain('Скидка 50% на проезд, 22 поездки в месяц');
    // the page fits the phone's width
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await docsScreenshot(page, 'cabinet-portal.png');
    await page.close();
  });

  it('partners, schools and banks pages', async () => {
    const page = await open('#/partners');
    const partners = page.locator('[data-test=partners] tbody tr');
    await partners.first().waitFor();
    expect(await partners.count()).toBe(2);
    expect(await partners.nth(0).innerText()).toContain('Национальный музей');
    expect(await partners.nth(0).innerText()).toContain('Пенсионеры — 50%');
    expect(await partners.nth(1).innerText()).toContain('5%');
    await page.locator('[data-test=tab-schools]').click();
    await page.locator('[data-test=schools] tbody tr').first().waitFor();
    expect(await page.locator('[data-test=schools] tbody tr').allInnerTexts()).toEqual([expect.stringContaining('S7'), expect.stringContaining('S12')]);
    await page.locator('[data-test=tab-banks]').click();
    // the banks list comes from the bank connection (GET /v1/public/banks): a table when the server has it, a notice otherwise
    await page.locator('[data-test=banks], [data-test=banks-missing]').first().waitFor();
    await page.close();
  });

  it('the language switch shows the same data in English and is remembered', async () => {
    const page = await open();
    await page.locator('[data-test=measure]').first().waitFor();
    await page.locator('[data-test=lang]').click();
    await page.locator('[data-test=measure][data-category=pensioner]', { hasText: 'Free travel' }).waitFor();
    expect(await page.locator('[data-test=measure][data-category=pensioner]').innerText()).toContain('Pensioners');
    await page.reload();
    await page.locator('[data-test=measure][data-category=pensioner]', { hasText: 'Free travel' }).waitFor();
    await page.locator('[data-test=lang]').click();
    await page.locator('[data-test=measure][data-category=pensioner]', { hasText: 'Бесплатный проезд' }).waitFor();
    await page.close();
  });

  it('the pages come with a strict CSP; without a bundle they answer server.web-missing', async () => {
    const res = await fetch(`${stack.server.httpUrl}/portal/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const nothing = await startStack('embedded', { webDir: null });
    try {
      const r = await fetch(`${nothing.server.httpUrl}/cabinet/`);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('server.web-missing');
    } finally {
      await nothing.close();
    }
  });
});
