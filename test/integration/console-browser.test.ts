import { mkdtempSync, rmSync } from 'node:fs';
import { registryContents } from '../support/test-db.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevice } from '../../provisioning/device-dir.js';
import { initDevice } from '../../provisioning/ops.js';
import { Store } from '../../device/store/index.js';
import { SyncClient } from '../../device/sync/client.js';
import { syncOptionsFromConfig } from '../../device/sync/from-config.js';
import { buildConsole } from '../../scripts/build-console.js';
import { docsScreenshot, launchChromium, PHONE } from '../support/browser.js';
import { logSink } from '../support/log.js';
import { operatorFetch } from '../support/operator-api.js';
import { MIR_PAN_BAD_LUHN, syntheticPan } from '../support/pans.js';
import { startProvStack, type ProvStack } from '../support/provision-rig.js';
import { testLogger } from '../support/sync-harness.js';

/**
 * The operator console in Debian's headless Chromium (playwright-core) against the real server: sign in, import a
 * CSV and read its row report, publish rules (and be refused an invalid document), revoke a real enrolled device
 * connected to the embedded broker and watch it go offline, block a card by its number (which then appears in no
 * registry file, log line or audit row), the language switch, a phone-sized viewport, and each role's menu and refusals.
 * RC_UPDATE_SCREENSHOT=1 writes docs/img/console-*.png (the README shows them).
 */
const LOST_PAN = syntheticPan(777);
const PASSWORD = 'console-test-password-1';
const USERS = [
  { name: 'ops', role: 'operator' },
  { name: 'audit', role: 'auditor' },
  { name: 'school1', role: 'school', school: 'S1' },
  { name: 'carrier7', role: 'carrier', carrier: 'C7' },
  { name: 'boss', role: 'admin' },
] as const;

let stack: ProvStack;
let ctx: BrowserContext | null = null;
let dir = '';
const logs = logSink();
const requests: string[] = [];
let device: { id: string; store: Store; client: SyncClient } | null = null;

async function api(path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await operatorFetch(
    { httpUrl: stack.server.httpUrl, dataDir: stack.dataDir },
    path,
    body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) },
  );
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function open(viewport = { width: 1280, height: 900 }): Promise<Page> {
  if (!ctx) throw new Error('the browser did not start');
  const page = await ctx.newPage();
  await page.setViewportSize(viewport);
  page.on('request', (r) => requests.push(r.url()));
  return page;
}

async function login(page: Page, name: string): Promise<void> {
  await ctx!.clearCookies(); // one browser profile: whoever signed in before is signed out
  await page.goto(`${stack.server.httpUrl}/`);
  await page.locator('[data-test=login] input[name=username]').fill(name);
  await page.locator('[data-test=login] input[name=password]').fill(PASSWORD);
  await page.locator('[data-test=login] button[type=submit]').click();
  await page.locator('[data-test=role]').waitFor();
}

async function shot(page: Page, name: string): Promise<void> {
  await docsScreenshot(page, `console-${name}.png`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rc-console-browser-'));
  await buildConsole(join(dir, 'console'));
  stack = await startProvStack('embedded', { consoleDir: join(dir, 'console'), log: logs.log });
  for (const u of USERS) expect((await api('/v1/users', { ...u, password: PASSWORD })).status).toBe(200);
  await stack.server.api.importCsv(
    'routes',
    (async function* () {
      yield 'carrier_id,carrier_name,inn,route_id,valid_from\nC7,Элиста-Авто,7707083893,7,2026-01-01\nC12,ИП Бадмаев,500100732259,12,2026-01-01\n';
    })(),
    false,
  );
  // a real enrolled validator on the server's broker (its own credentials), and a turnstile of school S2 (status only)
  const devDir = join(dir, 'bus');
  const r = await initDevice({
    server: stack.server.httpUrl,
    token: stack.token('bus', { route: '7' }).token,
    kind: 'bus',
    route: '7',
    vehicle: 'A123',
    dir: devDir,
  });
  const cfg = loadDevice(devDir).config;
  const store = Store.open(join(devDir, 'device.sqlite'), { deviceId: r.deviceId, synchronous: 'OFF' });
  const client = new SyncClient({ ...syncOptionsFromConfig(cfg, store, devDir, testLogger()), reconnectMinMs: 200, reconnectMaxMs: 1000 });
  client.start();
  device = { id: r.deviceId, store, client };
  ctx = await launchChromium(join(dir, 'profile'));
}, 120_000);

afterAll(async () => {
  await ctx?.close().catch(() => undefined);
  await device?.client.stop().catch(() => undefined);
  device?.store.close();
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('operator console in a browser', () => {
  it('signs in, shows the role, and every asset comes from the server itself (no internet needed)', async () => {
    const page = await open();
    await login(page, 'ops');
    expect(await page.locator('[data-test=role]').textContent()).toBe('оператор');
    await page.locator('table[data-test=fleet]').waitFor();
    const origin = new URL(stack.server.httpUrl).origin;
    expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'))).toEqual([]);
    await page.locator('[data-test=logout]').click();
    await page.locator('[data-test=login]').waitFor();
    expect(await page.evaluate(() => fetch('/v1/console/fleet').then((r) => r.status))).toBe(401);
    await page.close();
  });

  it('imports a CSV with upload progress and shows the row report, refused row with its reason; a refused file changes nothing', async () => {
    const page = await open();
    await login(page, 'ops');
    await page.goto(`${stack.server.httpUrl}/console/#/imports`);
    const csv =
      ['person_id,pan,psn,expiry', ...[1, 2, 3].map((i) => `P${i},${syntheticPan(i)},00,2030-12`), `P9,${MIR_PAN_BAD_LUHN},00,2030-12`].join('\n') + '\n';
    const before = stack.server.publisher.version('transit');
    await page.locator('[data-test=import-kind]').selectOption('cards');
    await page.locator('[data-test=import-file]').setInputFiles({ name: 'cards.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.locator('[data-test=import-upload]').click();
    // refused whole: the coded error with its help, and the report of the bad row
    await page.locator('.error[data-code="server.import-invalid"]').waitFor();
    expect(await page.locator('.error .help').first().textContent()).toBeTruthy();
    expect(await page.locator('[data-test=import-errors]').textContent()).toContain('Luhn');
    expect(stack.server.publisher.version('transit')).toBe(before);
    // with skip: three accepted, one refused
    await page.locator('[data-test=import-skip]').check();
    await page.locator('[data-test=import-upload]').click();
    await page.locator('[data-test=import-stage]', { hasText: 'Импорт выполнен' }).waitFor();
    expect(await page.locator('[data-test=applied]').textContent()).toBe('3');
    expect(await page.locator('[data-test=rejected]').textContent()).toBe('1');
    expect(await page.locator('[data-test=import-progress]').evaluate((p) => (p as HTMLProgressElement).value)).toBe(100);
    await shot(page, 'imports');
    await page.close();
  });

  it('rules editor: validates, diffs and publishes; an invalid document is refused with config.invalid and nothing is published', async () => {
    const page = await open();
    await login(page, 'ops');
    await page.goto(`${stack.server.httpUrl}/console/#/rules/rules`);
    const text = page.locator('[data-test=rules-text]');
    await expect.poll(() => text.inputValue()).toContain('"schema"');
    const before = (await api('/v1/config/rules')).json.version as number;
    const doc = JSON.parse(await text.inputValue()) as { tariff: { routes: Record<string, { fullFareKopecks: number }> } };
    const route = Object.keys(doc.tariff.routes)[0]!;
    doc.tariff.routes[route]!.fullFareKopecks += 100;
    await text.fill(JSON.stringify(doc, null, 2));
    await page.locator('[data-test=rules-diff-btn]').click();
    expect(await page.locator('[data-test=rules-diff] .add').count()).toBeGreaterThan(0);
    await shot(page, 'rules');
    await page.locator('[data-test=rules-publish]').click();
    await page.locator('[data-test=rules-published]').waitFor();
    expect((await api('/v1/config/rules')).json.version).toBe(before + 1);
    await text.fill(JSON.stringify({ schema: 1, tariff: { routes: 'none' } }));
    await page.locator('[data-test=rules-publish]').click();
    await page.locator('.error[data-code="config.invalid"]').waitFor();
    expect(await page.locator('.error .help').textContent()).toBeTruthy();
    await text.fill('{ not json');
    await page.locator('[data-test=rules-publish]').click();
    await page.locator('.error[data-code="config.invalid"]').waitFor();
    expect((await api('/v1/config/rules')).json.version).toBe(before + 1);
    await page.close();
  });

  it('fleet: the connected validator is online; revoked from its page (confirm dialog), it goes offline on the fleet page', async () => {
    const id = device!.id;
    const page = await open();
    await login(page, 'ops');
    await page.goto(`${stack.server.httpUrl}/console/#/fleet`);
    await page.locator(`tr[data-device="${id}"][data-state=online]`).waitFor({ timeout: 20_000 });
    await shot(page, 'fleet');
    await page.locator(`tr[data-device="${id}"] a`).click();
    await page.locator('[data-test=revoke]').click();
    await page.locator('[data-test=confirm-yes]').click();
    await page.locator('[data-test=revoked]').waitFor();
    await shot(page, 'device');
    await page.goto(`${stack.server.httpUrl}/console/#/fleet`);
    await page.locator(`tr[data-device="${id}"][data-state=revoked]`).waitFor({ timeout: 10_000 });
    expect(await page.locator(`tr[data-device="${id}"] [data-alarm=revoked]`).count()).toBe(1);
    await page.close();
  });

  it('blocks a card by its number: the page shows it masked; the PAN is in no registry file, no log line and no audit row', async () => {
    const page = await open();
    await login(page, 'ops');
    await page.goto(`${stack.server.httpUrl}/console/#/stoplist`);
    const before = stack.server.publisher.version('stoplist');
    await page.locator('[data-test=stop-pan]').fill(LOST_PAN);
    await page.locator('[data-test=stop-expiry]').fill('04/30');
    await page.locator('[data-test=stop-add]').click();
    await page.locator('[data-test=stop-added]').waitFor();
    const masked = `${LOST_PAN.slice(0, 6)}******${LOST_PAN.slice(-4)}`;
    expect(await page.locator('[data-test=stop-added]').textContent()).toContain(masked);
    expect(await page.locator('[data-test=stop-pan]').inputValue()).toBe('');
    expect(await page.locator('[data-test=stoplist]').textContent()).toContain(masked);
    expect(stack.server.publisher.version('stoplist')).toBe(before + 1);
    expect(await page.content()).not.toContain(LOST_PAN);
    await shot(page, 'stoplist');
    // a missing field: the coded error with its help, nothing published
    await page.locator('[data-test=stop-add]').click();
    await page.locator('.error[data-code="server.bad-request"] .help').waitFor();
    expect(stack.server.publisher.version('stoplist')).toBe(before + 1);
    // a bad number: the coded error, nothing published
    await page.locator('[data-test=stop-pan]').fill(MIR_PAN_BAD_LUHN);
    await page.locator('[data-test=stop-add]').click();
    await page.locator('.error[data-code="card.bad-pan"]').waitFor();
    expect(stack.server.publisher.version('stoplist')).toBe(before + 1);
    // journal search by card: the number goes in a POST body, never in a URL
    await page.goto(`${stack.server.httpUrl}/console/#/journal`);
    await page.locator('[data-test=j-pan]').fill(LOST_PAN);
    await page.locator('[data-test=j-expiry]').fill('04/30');
    await page.locator('[data-test=j-search]').click();
    await page.locator('[data-test=j-card]').waitFor();
    expect(requests.filter((u) => u.includes(LOST_PAN))).toEqual([]);
    const audit = await api('/v1/audit');
    expect(JSON.stringify(audit.json)).toContain('/v1/stoplist');
    expect(JSON.stringify(audit.json)).not.toContain(LOST_PAN);
    expect(registryContents(stack.server.db, stack.dataDir)).not.toContain(LOST_PAN); // SQLite files, or PostgreSQL's rows
    expect(logs.text()).not.toContain(LOST_PAN);
    await page.close();
  });

  it('switches to English and remembers it; a phone-sized viewport has no horizontal scroll', async () => {
    const page = await open(PHONE);
    await login(page, 'ops');
    await page.locator('[data-test=lang]').click();
    await expect.poll(() => page.locator('[data-test=role]').textContent()).toBe('operator');
    await page.reload();
    await page.locator('[data-test=role]').waitFor();
    expect(await page.locator('nav.menu').textContent()).toContain('Devices');
    for (const p of ['fleet', 'imports', 'rules', 'stoplist', 'journal', 'reports', 'enrol', 'lists']) {
      await page.goto(`${stack.server.httpUrl}/console/#/${p}`);
      await page.locator('main h2').waitFor();
      await page.waitForTimeout(200);
      expect(await page.evaluate(() => document.documentElement.scrollWidth), p).toBeLessThanOrEqual(PHONE.width);
    }
    await page.goto(`${stack.server.httpUrl}/console/#/fleet`);
    await page.locator('table[data-test=fleet] tbody tr').first().waitFor();
    // one card per device: nothing scrolls inside the table, every column of a device (alarms the last) is in view
    const wrap = await page.locator('table[data-test=fleet]').evaluate((t) => ({ scroll: t.parentElement!.scrollWidth, client: t.parentElement!.clientWidth }));
    expect(wrap.scroll).toBeLessThanOrEqual(wrap.client);
    const cells = await page
      .locator('table[data-test=fleet] tbody tr')
      .first()
      .locator('td')
      .evaluateAll((tds) =>
        tds.map((td) => ({ label: td.getAttribute('data-label'), right: td.getBoundingClientRect().right, shown: td.getBoundingClientRect().height > 0 })),
      );
    expect(cells.map((c) => c.label)).toEqual([
      'Device',
      'Kind',
      'School / route',
      'State',
      'Last seen',
      'List versions',
      'Journal backlog',
      'Reader',
      'Alarms',
    ]);
    for (const c of cells) expect(c.shown && c.right <= PHONE.width, `${c.label}: in view`).toBe(true);
    await shot(page, 'phone');
    await page.locator('[data-test=lang]').click(); // back to Russian for the next tests
    await page.close();
  });

  it('enrolment token with its QR code; a report with its chart and downloads', async () => {
    const page = await open();
    await login(page, 'boss');
    await page.goto(`${stack.server.httpUrl}/console/#/enrol`);
    await page.locator('[data-test=enrol-route]').fill('7');
    await page.locator('[data-test=enrol-create]').click();
    await page.locator('[data-test=enrol-qr] svg').waitFor();
    expect(await page.locator('[data-test=enrol-token]').textContent()).toMatch(/^rce_/);
    await shot(page, 'enrol');
    await page.goto(`${stack.server.httpUrl}/console/#/reports`);
    await page.locator('[data-test=report-name]').selectOption('devices');
    await page.locator('[data-test=report-show]').click();
    await page.locator('[data-test=report-downloads]').waitFor();
    const hrefs = await page.locator('[data-test=report-downloads] a').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
    expect(hrefs.map((h) => new URL(h).searchParams.get('format'))).toEqual(['json', 'csv', 'xlsx', 'pdf', 'html']);
    const pdf = await page.evaluate((u) => fetch(u).then(async (r) => [r.status, r.headers.get('content-type'), (await r.text()).slice(0, 5)]), hrefs[3]!);
    expect(pdf).toEqual([200, 'application/pdf', '%PDF-']);
    await shot(page, 'reports');
    await page.close();
  });
});

describe('each role sees what it may and nothing else', () => {
  const MENUS: Record<string, string[]> = {
    ops: ['fleet', 'imports', 'lists', 'rules', 'enrol', 'stoplist', 'holders', 'journal', 'reports'],
    audit: ['fleet', 'lists', 'journal', 'reports'],
    school1: ['fleet', 'journal', 'reports'],
    carrier7: ['reports'],
    boss: ['fleet', 'imports', 'lists', 'rules', 'enrol', 'stoplist', 'holders', 'journal', 'reports'],
  };
  const call = (page: Page, method: string, path: string, body?: unknown) =>
    page.evaluate(
      async ([m, p, b]) => {
        const s = (await (await fetch('/v1/session')).json()) as { csrf: string };
        const r = await fetch(p as string, {
          method: m as string,
          headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrf },
          ...(b !== undefined ? { body: JSON.stringify(b) } : {}),
        });
        return [r.status, ((await r.json()) as { error?: { code: string } }).error?.code ?? null] as const;
      },
      [method, path, body] as const,
    );

  for (const u of USERS) {
    it(`${u.role} (${u.name}): its menu; other pages and their API calls are refused`, async () => {
      const page = await open();
      await login(page, u.name);
      const menu = await page.locator('nav.menu a').evaluateAll((as) => as.map((a) => a.getAttribute('data-page')));
      expect(menu).toEqual(MENUS[u.name]);
      const notMine = ['imports', 'rules', 'stoplist', 'fleet', 'lists'].filter((p) => !MENUS[u.name]!.includes(p));
      for (const p of notMine) {
        await page.goto(`${stack.server.httpUrl}/console/#/${p}`);
        await page.locator('[data-test=forbidden]').waitFor();
      }
      const writer = u.role === 'operator' || u.role === 'admin';
      expect((await call(page, 'POST', '/v1/config/validate', { name: 'rules', rules: {} }))[1]).toBe(writer ? 'config.invalid' : 'auth.forbidden');
      expect((await call(page, 'GET', '/v1/stoplist'))[0]).toBe(u.role === 'school' || u.role === 'carrier' ? 403 : 200);
      if (u.role === 'carrier') {
        expect(await call(page, 'GET', '/v1/reports/compensation?month=2026-11&carrier=C12')).toEqual([403, 'auth.forbidden']);
        expect((await call(page, 'GET', '/v1/reports/compensation?month=2026-11'))[0]).toBe(200);
        expect(await call(page, 'GET', '/v1/console/fleet')).toEqual([403, 'auth.forbidden']);
      }
      if (u.role === 'school') {
        const fleet = (await page.evaluate(() => fetch('/v1/console/fleet').then((r) => r.json()))) as { devices: { school: string | null }[] };
        expect(fleet.devices.every((d) => d.school === 'S1')).toBe(true);
        expect((await call(page, 'GET', `/v1/console/devices/${device!.id}`))[0]).toBe(404);
        expect(await call(page, 'GET', '/v1/reports/attendance?month=2026-11&school=S2')).toEqual([403, 'auth.forbidden']);
      }
      await page.close();
    });
  }
});
