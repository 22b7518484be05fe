/**
 * The cardholder's cabinet end to end (issue 15, "done when"): a holder signs in through ESIA (its stand-in) in
 * headless Chromium and connects a card; the card is then tapped on a real device runtime (`rc-device run` as a
 * child process, a private pcscd + vpcd with a virtual Mir card) and is recognised with the holder's benefit. The
 * holder replaces it in the browser: after the next list version the old card is no longer a resident card on the
 * validator (it rides at the full fare like any bank card) and the new one is recognised.
 *
 * The server tokenises the typed number and printed expiry (tokeniseHolderCard: PAN ‖ expiry); the device derives the
 * token from the card it reads, PAN sequence number and all: the two meet without the PSN ever being typed.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReply } from '../../device/runtime/status.js';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { buildPublicWeb } from '../../scripts/build-console.js';
import { parseCabinetConfig } from '../../sync-server/cabinet/provider.js';
import { importIdentities, snilsKey } from '../../sync-server/cabinet/service.js';
import { startServer, type RunningServer } from '../../sync-server/server.js';
import { launchChromium, PHONE } from '../support/browser.js';
import { ESIA_PERSONS, startEsiaStandIn, type EsiaStandIn } from '../support/esia/stand-in.js';
import { freePort } from '../support/rig/broker.js';
import { dbOption } from '../support/sync-harness.js';
import { PcscdRig, type VpcdSlot } from '../support/rig/pcscd.js';
import { VcardHost } from '../support/rig/vcards.js';
import { linesOf, startDeviceProc, type DeviceProc } from './runtime-rig.js';

/** Synthetic, Luhn-valid Mir numbers (never real ones). */
const CARD_A = '2200700000000504';
const CARD_B = '2200700000000512';
const card = (pan: string) => ({ kind: 'emv' as const, pan, expiry: '2029-06', psn: '01' });

const dirs: string[] = [];
let pcscd: PcscdRig;
let host: VcardHost;
let slot: VpcdSlot;
let esia: EsiaStandIn | null = null;
let server: RunningServer | null = null;
let bus: DeviceProc | null = null;
let ctx: BrowserContext | null = null;
let base = '';

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Put the card on the reader, wait for the device's decision, take it away. */
async function tap(pan: string): Promise<NonNullable<StatusReply['lastTap']>> {
  const before = (await bus!.status()).taps;
  await host.insert(slot.port, card(pan));
  const s = await bus!.waitStatus((x) => x.taps > before, `a tap of …${pan.slice(-4)}`);
  await host.remove(slot.port);
  await bus!.waitStatus((x) => x.readers.find((r) => r.name === slot.readerName)?.cardPresent === false, 'card removed');
  return s.lastTap!;
}

/** The validator holds the transit list version the server published last. */
const listCaughtUp = () =>
  bus!.waitStatus((s) => s.lists.find((l) => l.scope === 'transit')?.version === server!.publisher.version('transit'), 'the current transit list', 30_000);

async function connectInBrowser(page: Page, pan: string, status: 'connected' | 'replaced'): Promise<void> {
  await page.goto(`${base}/cabinet/#/connect`);
  await page.locator('[data-test=pan]').fill(pan);
  await page.locator('[data-test=expiry]').fill('06/29');
  await page.locator('[data-test=submit]').click();
  await page.locator(`[data-test=connected][data-status=${status}]`).waitFor();
}

describe('cabinet → device: a card connected in the browser is recognised by a validator; a replaced one is not', () => {
  let page: Page;

  beforeAll(async () => {
    pcscd = await PcscdRig.create({ friendlyName: 'RC Cabinet PCD' });
    slot = pcscd.slots[0]!;
    host = await VcardHost.start();
    // ESIA (stand-in) and the server with the cabinet on its public listener
    const port = await freePort();
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const redirectUri = `http://127.0.0.1:${port}/v1/cabinet/callback`;
    esia = await startEsiaStandIn({ clientId: 'RCKALM', clientPublicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), redirectUri });
    const web = tmp('rc-cab-e2e-web-');
    await buildPublicWeb(web);
    const dataDir = tmp('rc-cab-e2e-srv-');
    server = await startServer({
      dataDir,
      mqttPort: 0,
      httpPort: 0,
      tokenKey: DEV_TOKEN_KEY,
      log: createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
      chargingIntervalMs: 60_000,
      ...dbOption(dataDir),
      webDir: web,
      publicListen: { host: '127.0.0.1', port },
      cabinet: {
        config: parseCabinetConfig({
          provider: {
            kind: 'esia',
            baseUrl: esia.url,
            clientId: 'RCKALM',
            redirectUri,
            signer: { kind: 'key', key: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
            verify: { publicKey: esia.publicKeyPem },
          },
        }),
      },
    });
    base = server.publicUrl!;
    await server.api.setConfig('rules', {
      schema: 1,
      tariff: { routes: { '7': { fullFareKopecks: 3500 } }, benefits: { pensioner: { kind: 'free' } }, repeatWindowSec: 0 },
    });
    importIdentities(server.db, snilsKey(dataDir), [{ personId: 'P-BAIRTA', snils: '11223344595' }]);
    await server.api.importCsv('benefits', linesOf('person_id,category,valid_from,valid_to\nP-BAIRTA,pensioner,2020-01-01,2030-12-31\n'), false);
    // the validator: rc-device run as a child process on the rig's pcscd
    const env = pcscd.clientEnv();
    delete env.RC_TOKEN_KEY;
    bus = await startDeviceProc(
      {
        schema: 1,
        device: { id: 'bus-cabinet-e2e', kind: 'bus', route: '7', vehicle: 'A7' },
        tariff: { routes: { '7': { fullFareKopecks: 3500 } }, benefits: { pensioner: { kind: 'free' } }, repeatWindowSec: 0 },
        readers: [{ name: slot.readerName }],
        sync: { brokerUrl: server.mqttUrl, serverPublicKey: server.publicKeyPem },
      },
      tmp('rc-cab-e2e-bus-'),
      env,
    );
    await bus
      .waitStatus((s) => s.sync.connected && s.readers.some((r) => r.name === slot.readerName && r.state === 'idle'), 'bus ready', 30_000)
      .catch(async (e: unknown) => {
        const s = await bus!.status().catch(() => null);
        throw new Error(`bus not ready: ${JSON.stringify({ sync: s?.sync, lists: s?.lists, readers: s?.readers })} ${bus!.logs.slice(-8).join('\n')}`, {
          cause: e,
        });
      });
    // the holder signs in through ESIA in the browser
    ctx = await launchChromium(tmp('rc-cab-e2e-profile-'));
    page = await ctx.newPage();
    await page.setViewportSize(PHONE);
    await page.goto(`${base}/cabinet/`);
    await page.locator('[data-test=login]').click();
    await page.locator('select[name=oid]').selectOption(ESIA_PERSONS[0]!.oid);
    await page.locator('button[value=allow]').click();
    await page.locator('[data-test=holder]', { hasText: ESIA_PERSONS[0]!.lastName }).waitFor();
  }, 180_000);

  afterAll(async () => {
    await ctx?.close().catch(() => undefined);
    await bus?.kill().catch(() => undefined);
    await host?.close().catch(() => undefined);
    await pcscd?.dispose().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await esia?.close().catch(() => undefined);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  it('before it is connected, the card is any bank card: full fare', async () => {
    expect(await tap(CARD_A)).toMatchObject({ result: 'allow', reason: 'full-fare', fareKopecks: 3500, benefit: null });
  });

  it('connected in the cabinet, it is recognised on the validator with the holder’s benefit', async () => {
    await connectInBrowser(page, CARD_A, 'connected');
    await listCaughtUp();
    expect(await tap(CARD_A)).toMatchObject({ result: 'allow', reason: 'benefit', fareKopecks: 0, benefit: 'pensioner' });
  });

  it('replaced in the cabinet: the old card is refused its benefit after the next list version, the new one is recognised', async () => {
    await connectInBrowser(page, CARD_B, 'replaced');
    await listCaughtUp();
    expect(await tap(CARD_A)).toMatchObject({ result: 'allow', reason: 'full-fare', fareKopecks: 3500, benefit: null });
    expect(await tap(CARD_B)).toMatchObject({ result: 'allow', reason: 'benefit', fareKopecks: 0, benefit: 'pensioner' });
    // the device never logged a card number
    expect(bus!.logs.join('\n')).not.toContain(CARD_A);
    expect(bus!.logs.join('\n')).not.toContain(CARD_B);
  });
});
