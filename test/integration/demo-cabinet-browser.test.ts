import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { CARDS, DEMO_PERSONS, runScriptedDemo, type DemoWorld } from '../../demo/demo.js';
import { buildPublicWeb } from '../../scripts/build-console.js';
import { launchChromium, PHONE } from '../support/browser.js';

/**
 * `npm start` in a terminal: after the scripted day the demo's server stays up and its cabinet signs in through the
 * demo's identity provider, in Debian's headless Chromium on a phone screen. The pensioner sees her card (masked), her
 * benefit and the bus trip of the script; the student's mother sees her son and his school day; the public portal shows
 * the measures of the rules the demo published. The phone's date is not the demo's day: the pages go by the server's.
 */
const dir = mkdtempSync(join(tmpdir(), 'rc-demo-cabinet-'));
let ctx: BrowserContext | null = null;

afterAll(async () => {
  await ctx?.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** The cabinet's sign-in button, the demo's page, "sign in as" `who`; back in the cabinet with their name shown. */
async function signInAs(world: DemoWorld, who: keyof typeof DEMO_PERSONS): Promise<Page> {
  await ctx!.clearCookies();
  const page = await ctx!.newPage();
  await page.setViewportSize(PHONE);
  await page.goto(world.urls.cabinet);
  await page.locator('[data-test=login]').click();
  await page.locator('[data-test=demo-sign-in]').waitFor();
  expect(await page.locator('[data-test=demo-sign-in] li').count()).toBe(Object.keys(DEMO_PERSONS).length);
  await page.locator(`[data-test=as-${DEMO_PERSONS[who].signIn.id}]`).click();
  await page.locator('[data-test=holder]', { hasText: DEMO_PERSONS[who].signIn.name.split(' ')[0]! }).waitFor({ timeout: 10_000 });
  return page;
}

describe('npm start: the cabinet of the demo in Chromium', () => {
  it('after the scripted day, the pensioner signs in through the demo page and sees her card masked, her benefit and her bus trip; the mother sees her son', async () => {
    await buildPublicWeb(join(dir, 'web'));
    const lines: string[] = [];
    const errors: string[] = [];
    let checked = false;
    const pan = CARDS.pensioner.spec.kind === 'emv' ? CARDS.pensioner.spec.pan : '';
    await runScriptedDemo({
      out: { line: (s) => lines.push(s) },
      webDir: join(dir, 'web'),
      stay: async (world) => {
        // what npm start prints next to the console's URL
        const text = lines.join('\n');
        expect(text).toContain(world.urls.console);
        expect(text).toContain(world.urls.cabinet);
        expect(text).toContain(world.urls.portal);
        ctx = await launchChromium(join(dir, 'profile'));
        // the phone's date is not the demo's day (a year and a half later): the pages ask for the days up to the server's
        // today (/v1/cabinet/me), which in the demo is the scripted day
        await ctx.clock.install({ time: new Date('2028-06-15T12:00:00+03:00') });
        ctx.on('weberror', (e) => errors.push(e.error().message));

        const anna = await signInAs(world, 'anna');
        anna.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
        await anna.locator('[data-test=my-card]').waitFor();
        const masked = (await anna.locator('[data-test=masked]').innerText()).replace(/\s/g, '');
        expect(masked).toBe(`${pan.slice(0, 6)}******${pan.slice(-4)}`);
        expect(await anna.content()).not.toContain(pan);
        await anna.locator('[data-test=tab-benefits]').click();
        await anna.locator('[data-test=benefit][data-category=pensioner]').waitFor();
        await anna.locator('[data-test=tab-trips]').click();
        await anna.locator('[data-test=month]').first().waitFor();
        // the script's one bus tap of the pensioner: 08:02 on route 7, free
        expect(await anna.locator('[data-test=trip-rows] tbody tr').count()).toBe(1);
        const trip = await anna.locator('[data-test=trip-rows] tbody tr').first().innerText();
        expect(trip).toContain('08:02');
        expect(trip).toContain('7');

        const baira = await signInAs(world, 'baira');
        await baira.locator('[data-test=tab-children]').click();
        await baira.locator('[data-test=child][data-person=P-TIMUR]', { hasText: 'Тимур' }).click();
        await baira.locator('[data-test=child-day][data-day="2026-11-24"] [data-test=passages]').waitFor();
        expect(await baira.locator('[data-test=child-name]').innerText()).toBe('Тимур');

        // the public portal's measures: the demo published its rules as an operator does, so the categories and their fares show
        const portal = await ctx.newPage();
        await portal.setViewportSize({ width: 390, height: 844 });
        await portal.goto(world.urls.portal);
        await portal.locator('[data-test=measure]').first().waitFor();
        expect(await portal.locator('[data-test=measure]').count()).toBe(2);
        expect(await portal.locator('[data-test=measure][data-category=pensioner]').innerText()).toContain('Бесплатный проезд');
        expect(await portal.locator('[data-test=measure][data-category=schoolchild]').innerText()).toContain('Скидка 50% на проезд');
        checked = true;
      },
    });
    expect(checked).toBe(true);
    expect(errors).toEqual([]);
  }, 180_000);
});
