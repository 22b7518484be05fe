import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { registryContents } from '../support/test-db.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processTap } from '../../device/runtime/process-tap.js';
import { loadConfigFile, withDevice } from '../../device/config/index.js';
import type { Config } from '../../device/config/schema.js';
import { buildPublicWeb } from '../../scripts/build-console.js';
import { parseCabinetConfig } from '../../sync-server/cabinet/provider.js';
import { importIdentities, snilsKey } from '../../sync-server/cabinet/service.js';
import { docsScreenshot, launchChromium, PHONE } from '../support/browser.js';
import { freePort } from '../support/rig/broker.js';
import { ESIA_PERSONS, startEsiaStandIn, type EsiaStandIn } from '../support/esia/stand-in.js';
import { syntheticPan } from '../support/pans.js';
import { cardsCsv } from '../support/registry-csv.js';
import { busConfig, importText, openDevice, startStack, type Device, type Stack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

/**
 * The cardholder's cabinet (issue 15 item 2) in Debian's headless Chromium on a 390×844 phone screen.
 * RC_UPDATE_SCREENSHOT=1 writes docs/img/cabinet-*.png (the README shows them).
 */

let stack: Stack;
let ctx: BrowserContext | null = null;
let dir = '';
let bus: Device | null = null;
let gate: Device | null = null;
const requests: string[] = [];

/** Two holders: ESIA persons of the stand-in, whom the registry knows by SNILS (rc-sync-server identities import). */
const HOLDERS = {
  anna: { oid: ESIA_PERSONS[0]!.oid, snils: '11223344595', lastName: ESIA_PERSONS[0]!.lastName, personId: 'P-ANNA' },
  boris: { oid: ESIA_PERSONS[1]!.oid, snils: '12345678964', lastName: ESIA_PERSONS[1]!.lastName, personId: 'P-BORIS' },
} as const;
type Who = keyof typeof HOLDERS;
const CARD_1 = syntheticPan(501);
const CARD_2 = syntheticPan(502);
let esia: EsiaStandIn | null = null;
let base = '';

async function open(path = '/cabinet/'): Promise<Page> {
  const page = await ctx!.newPage();
  await page.setViewportSize(PHONE);
  await page.goto(`${base}${path}`);
  return page;
}

const TURNSTILE = join(import.meta.dirname, '..', 'fixtures', 'decide', 'turnstile.config.json');
let mono = 5_000_000;
/** A tap on a device through its real store and rules (the tap pipeline's decide and commit), as its sync client then uploads it. */
function tapOn(dev: Device, cfg: Config, token: string, at: number, direction: 'entry' | 'exit' | null = null) {
  mono += 1_000_000;
  return processTap(dev.store, { wallTime: at, monotonicMs: mono, bootId: 'test', direction, card: { token, expiry: null } }, cfg).decision;
}
const tokenOfPerson = (person: string) => stack.server.db.prepare('SELECT token FROM cards WHERE person_id = ?').pluck().get(person) as string | undefined;
const inSync = (dev: Device, scope: string) => dev.store.listVersion(scope) === stack.server.publisher.version(scope);
async function uploaded(dev: Device): Promise<void> {
  const last = dev.store.lastSeq();
  await waitFor(() => dev.store.ackedSeq() === last, { timeoutMs: 20_000, what: `${dev.id}'s journal acknowledged` });
}

/** Sign in as `who`: the cabinet's button, the ESIA stand-in's page (pick the person, allow), back in the cabinet; a fresh page at 390×844. */
async function signIn(who: Who): Promise<Page> {
  await ctx!.clearCookies(); // one browser profile: whoever signed in before is signed out
  const page = await open();
  page.on('request', (r) => requests.push(r.url()));
  await page.locator('[data-test=login]').click();
  await page.locator('select[name=oid]').selectOption(HOLDERS[who].oid);
  await page.locator('button[value=allow]').click();
  await page
    .locator('[data-test=holder]', { hasText: HOLDERS[who].lastName })
    .waitFor({ timeout: 10_000 })
    .catch(async (e: unknown) => {
      throw new Error(`sign-in as ${who} did not finish at ${page.url()}: ${stack.logs.lines.filter((l) => l.includes('sign')).join('')}`, { cause: e });
    });
  return page;
}

/** A cabinet API call from inside the page (its cookie, its CSRF token on writes). */
function inPage(
  page: Page,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: { error?: { code: string } } & Record<string, unknown> }> {
  return page.evaluate(
    async ({ method, path, body }) => {
      const me = (await (await fetch('/v1/cabinet/me')).json()) as { csrf?: string };
      const res = await fetch(path, {
        method,
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf ?? '' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, json: (await res.json()) as { error?: { code: string } } & Record<string, unknown> };
    },
    { method, path, body },
  );
}

async function connect(page: Page, pan: string, expiry: string): Promise<void> {
  await page.locator('[data-test=pan]').fill(pan);
  await page.locator('[data-test=expiry]').fill(expiry);
  await page.locator('[data-test=submit]').click();
}

async function shot(page: Page, name: string): Promise<void> {
  await docsScreenshot(page, `cabinet-${name}.png`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rc-cabinet-browser-'));
  await buildPublicWeb(join(dir, 'web'));
  // ESIA (its test stand-in) signs the holders in; the cabinet and its pages are on the public listener
  const port = await freePort();
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const redirectUri = `http://127.0.0.1:${port}/v1/cabinet/callback`;
  esia = await startEsiaStandIn({ clientId: 'RCKALM', clientPublicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), redirectUri });
  const config = parseCabinetConfig({
    provider: {
      kind: 'esia',
      baseUrl: esia.url,
      clientId: 'RCKALM',
      redirectUri,
      signer: { kind: 'key', key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
      verify: { publicKey: esia.publicKeyPem },
    },
  });
  stack = await startStack('embedded', { webDir: join(dir, 'web'), publicListen: { host: '127.0.0.1', port }, cabinet: { config } });
  base = stack.server.publicUrl!;
  const cfg = busConfig('bus-07-cab');
  await stack.server.api.setConfig('rules', { schema: 1, tariff: cfg.tariff });
  await stack.server.api.setConfig('rules-school-7', { schema: 1, school: loadConfigFile(TURNSTILE).school });
  importIdentities(stack.server.db, snilsKey(stack.dataDir), Object.values(HOLDERS));
  await importText(stack, 'benefits', 'person_id,category,valid_from,valid_to\nP-ANNA,pensioner,2026-01-01,2030-12-31\n');
  // Anna's son (p1) and Boris's daughter (p2), each with a card and a place at school 7
  await importText(stack, 'cards', cardsCsv(1, 2));
  await importText(
    stack,
    'enrolments',
    'person_id,school_id,role,grade,meal_category,valid_from,valid_to\np1,7,student,3,,2026-01-01,2030-12-31\np2,7,student,4,,2026-01-01,2030-12-31\n',
  );
  await importText(
    stack,
    'guardians',
    'person_id,guardian_id,child_name,channel,address,consent,events\np1,P-ANNA,Саша,email,anna@example.org,yes,entry\np2,P-BORIS,Алина,email,boris@example.org,yes,entry\n',
  );
  bus = openDevice(stack, 'bus-07-cab');
  gate = openDevice(stack, 'school-7-gate-1', ['school:7', 'stoplist']);
  ctx = await launchChromium(join(dir, 'profile'));
}, 120_000);

afterAll(async () => {
  await ctx?.close().catch(() => undefined);
  await bus?.close();
  await gate?.close();
  await stack?.close();
  await esia?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the cabinet is an installable PWA', () => {
  it('serves its manifest (name, start URL, scope, standalone, 192 and 512 px icons) and the icons', async () => {
    const res = await fetch(`${base}/cabinet/manifest.webmanifest`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/manifest+json');
    const m = (await res.json()) as { name: string; start_url: string; scope: string; display: string; icons: { src: string; sizes: string; type: string }[] };
    expect(m).toMatchObject({ start_url: '/cabinet/', scope: '/cabinet/', display: 'standalone' });
    expect(m.icons.map((i) => i.sizes)).toEqual(['192x192', '512x512']);
    for (const i of m.icons) {
      const icon = await fetch(`${base}/cabinet/${i.src}`);
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
    expect(scope).toBe(`${base}/cabinet/`);
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

describe('a holder signs in, connects and replaces a card, and sees only their own data', () => {
  const cfg = busConfig('bus-07-cab');
  const gateCfg = () => withDevice(loadConfigFile(TURNSTILE), { id: 'school-7-gate-1' });
  const DAY = 86_400_000;
  /** 08:10 and 14:05 Moscow time on the last weekday before today that is not a school holiday. */
  const lastSchoolDay = () => {
    let d = new Date(Date.now() - DAY);
    while ([0, 6].includes(d.getUTCDay()) || d.toISOString().startsWith('2026-12-31')) d = new Date(d.getTime() - DAY);
    const day = d.toISOString().slice(0, 10);
    return { day, entry: Date.parse(`${day}T08:10:00+03:00`), exit: Date.parse(`${day}T14:05:00+03:00`) };
  };

  it('signs in through the identity provider and shows the sign-in page before', async () => {
    const page = await signIn('anna');
    expect(await page.locator('[data-test=no-card]').isVisible()).toBe(true);
    await page.close();
  });

  it('connects a card: masked number and expiry shown, the number never in a URL, storage, the registry or a log', async () => {
    const page = await signIn('anna');
    await page.locator('[data-test=connect]').click();
    // the hint says when the number has a typo; the server decides
    await page.locator('[data-test=pan]').fill(`${CARD_1.slice(0, -1)}${(Number(CARD_1.at(-1)) + 1) % 10}`);
    await page.locator('[data-test=luhn].bad').waitFor();
    await connect(page, `${CARD_1.slice(0, -1)}${(Number(CARD_1.at(-1)) + 1) % 10}`, '12/29');
    await page.locator('.error[data-code="card.bad-pan"]').waitFor();
    expect(await page.locator('[data-test=pan]').inputValue()).toBe(''); // emptied as it was sent
    await connect(page, CARD_1, '12/29');
    await page.locator('[data-test=connected][data-status=connected]').waitFor();
    expect(await page.locator('[data-test=connected]').innerText()).toContain(`${CARD_1.slice(0, 6)}`);
    await shot(page, 'connect');
    await page.locator('[data-test=connected] a').click();
    await page.locator('[data-test=my-card]').waitFor();
    expect(await page.locator('[data-test=masked]').innerText()).toContain(CARD_1.slice(-4));
    expect(await page.locator('[data-test=expiry]').innerText()).toBe('12/29');
    expect(['active', 'pending']).toContain(await page.locator('[data-test=status]').getAttribute('data-status'));
    // the number went in a POST body only
    expect(requests.some((u) => u.includes(CARD_1))).toBe(false);
    expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toContain(CARD_1);
    expect(stack.logs.text()).not.toContain(CARD_1);
    // the registry's files (SQLite) or every row of every table (PostgreSQL, RC_TEST_DB=postgres): never an empty check
    expect(registryContents(stack.server.db, stack.dataDir)).not.toContain(CARD_1);
    await page.close();
  });

  it('the card is recognised on a validator: a pensioner rides free; the trips page shows the settled trips by month', async () => {
    const token = tokenOfPerson('P-ANNA')!;
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    await waitFor(() => inSync(bus!, 'transit'), { timeoutMs: 20_000, what: 'validator holds the list with the new card' });
    const now = Date.now();
    const taps = [now - 40 * DAY, now - 3 * DAY, now - 3 * DAY + 2 * 3600_000].map((t) => tapOn(bus!, cfg, token, t));
    for (const d of taps) expect(d).toMatchObject({ result: 'allow', benefit: 'pensioner', fareKopecks: 0 });
    await uploaded(bus!);
    const page = await signIn('anna');
    await page.locator('[data-test=tab-trips]').click();
    await page.locator('[data-test=month]').first().waitFor();
    expect(await page.locator('[data-test=trip-rows] tbody tr').count()).toBe(3);
    expect(await page.locator('[data-test=month]').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('[data-test=trips]').innerText()).toContain('Пенсионеры');
    await shot(page, 'trips');
    await page.locator('[data-test=tab-benefits]').click();
    await page.locator('[data-test=benefit][data-category=pensioner]', { hasText: 'Пенсионеры' }).waitFor();
    await page.locator('[data-test=tab-card]').click();
    await page.locator('[data-test=status][data-status=active]').waitFor();
    await shot(page, 'card');
    await page.close();
  });

  it('replaces the card: the old one leaves the list in the next version and rides at the full fare, the new one is recognised', async () => {
    const old = tokenOfPerson('P-ANNA')!;
    const page = await signIn('anna');
    await page.locator('[data-test=replace]').click();
    await connect(page, CARD_2, '03/31');
    await page.locator('[data-test=connected][data-status=replaced]').waitFor();
    expect(await page.locator('[data-test=previous]').innerText()).toContain(CARD_1.slice(-4));
    const fresh = tokenOfPerson('P-ANNA')!;
    expect(fresh).not.toBe(old);
    await waitFor(() => inSync(bus!, 'transit'), { timeoutMs: 20_000, what: 'validator holds the next list version' });
    expect(tapOn(bus!, cfg, old, Date.now() - 60_000)).toMatchObject({ benefit: null, fareKopecks: cfg.tariff!.routes['7']!.fullFareKopecks });
    expect(tapOn(bus!, cfg, fresh, Date.now())).toMatchObject({ result: 'allow', benefit: 'pensioner', fareKopecks: 0 });
    await page.close();
  });

  it("after the replacement the trips page keeps the old card's trips and shows each trip's card", async () => {
    await uploaded(bus!);
    const page = await signIn('anna');
    await page.locator('[data-test=tab-trips]').click();
    await page.locator('[data-test=month]').first().waitFor();
    // the three pensioner trips and the full-fare tap with the first card, the free trip with the new one
    expect(await page.locator('[data-test=trip-rows] tbody tr').count()).toBe(5);
    const cards = (await page.locator('[data-test=trip-card]').allInnerTexts()).map((c) => c.replace(/\s/g, ''));
    const masked = (pan: string) => `${pan.slice(0, 6)}******${pan.slice(-4)}`;
    expect(cards.filter((c) => c === masked(CARD_1))).toHaveLength(4);
    expect(cards.filter((c) => c === masked(CARD_2))).toHaveLength(1);
    // newest first: the new card's trip heads the list
    expect(cards[0]).toBe(masked(CARD_2));
    expect(await page.content()).not.toContain(CARD_1);
    await page.close();
  });

  it('the debts page lists the declined fares of both cards, each with its card, and how to pay', async () => {
    const db = stack.server.db;
    const old = db.prepare("SELECT token, until_ms FROM holder_card_history WHERE person_id = 'P-ANNA' ORDER BY until_ms DESC").get() as {
      token: string;
      until_ms: number;
    };
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const charge = db.prepare(
      "INSERT INTO charges(token, service_day, amount, taps, status, reason, created_at, updated_at) VALUES (?, ?, ?, 1, 'declined', 'insufficient-funds', '2026-01-01', '2026-01-01')",
    );
    charge.run(old.token, day(old.until_ms - 86_400_000), 3500);
    charge.run(tokenOfPerson('P-ANNA')!, day(Date.now()), 4000);
    const page = await signIn('anna');
    await page.locator('[data-test=tab-debts]').click();
    await page.locator('[data-test=debt]').first().waitFor();
    expect(await page.locator('[data-test=debt]').count()).toBe(2);
    const masked = (pan: string) => `${pan.slice(0, 6)}******${pan.slice(-4)}`;
    const cards = (await page.locator('[data-test=debt-card]').allInnerTexts()).map((c) => c.replace(/\s/g, ''));
    expect(cards).toEqual([`Карта:${masked(CARD_1)}`, `Карта:${masked(CARD_2)}`]);
    const text = await page.locator('[data-test=debts]').innerText();
    expect(text).toContain('35.00');
    expect(text).toContain('Пополните счёт карты');
    expect(text).toContain('Состояние: не оплачено'); // the status in words, not the registry's 'declined'
    expect(await page.content()).not.toContain(CARD_1);
    db.prepare("DELETE FROM charges WHERE status = 'declined' AND reason = 'insufficient-funds'").run();
    await page.close();
  });

  it("the children page shows a child's passages; another holder sees nothing of them and is refused their child's data", async () => {
    const { entry, exit, day } = lastSchoolDay();
    await waitFor(() => inSync(gate!, 'school:7'), { timeoutMs: 20_000, what: 'turnstile holds the school list' });
    tapOn(gate!, gateCfg(), tokenOfPerson('p1')!, entry, 'entry');
    tapOn(gate!, gateCfg(), tokenOfPerson('p1')!, exit, 'exit');
    await uploaded(gate!);
    const anna = await signIn('anna');
    await anna.locator('[data-test=tab-children]').click();
    await anna.locator('[data-test=child][data-person=p1]').click();
    await anna.locator(`[data-test=child-day][data-day="${day}"] [data-test=passages]`).waitFor();
    expect(await anna.locator('[data-test=child-name]').innerText()).toBe('Саша');
    await shot(anna, 'children');
    // Anna asks for Boris's daughter: refused
    expect((await inPage(anna, 'GET', '/v1/cabinet/children/p2/days')).json.error?.code).toBe('auth.forbidden');
    await anna.close();

    const boris = await signIn('boris');
    expect(await boris.locator('[data-test=no-card]').isVisible()).toBe(true); // Anna's card is not his
    const forbidden = await inPage(boris, 'GET', '/v1/cabinet/children/p1/days');
    expect(forbidden).toMatchObject({ status: 403, json: { error: { code: 'auth.forbidden' } } });
    expect(((await inPage(boris, 'GET', '/v1/cabinet/trips')).json as { trips: unknown[] }).trips).toEqual([]);
    const me = (await inPage(boris, 'GET', '/v1/cabinet/me')).json as { children: { personId: string }[]; benefits: unknown[] };
    expect(me.children.map((c) => c.personId)).toEqual(['p2']);
    expect(me.benefits).toEqual([]);
    // Anna's card, typed by Boris: taken
    const taken = await inPage(boris, 'POST', '/v1/cabinet/card', { pan: CARD_2, expiry: '03/31' });
    expect(taken).toMatchObject({ status: 409, json: { error: { code: 'cabinet.card-taken' } } });
    await boris.close();
  });

  it('switches to English and back; signing out shows the sign-in page', async () => {
    const page = await signIn('anna');
    await page.locator('[data-test=tab-card]', { hasText: 'Карта' }).waitFor();
    await page.locator('[data-test=lang]').click();
    await page.locator('[data-test=tab-card]', { hasText: 'Card' }).waitFor();
    expect(await page.locator('[data-test=my-card] h1').innerText()).toBe('My card');
    await page.locator('[data-test=lang]').click();
    await page.locator('[data-test=tab-card]', { hasText: 'Карта' }).waitFor();
    await page.locator('[data-test=logout]').click();
    await page.locator('[data-test=signin]').waitFor();
    expect((await inPage(page, 'GET', '/v1/cabinet/me')).status).toBe(401);
    await page.close();
  });
});
