/**
 * The PAN ‖ PSN → PAN ‖ expiry migration (docs/token-key.md, "The PAN ‖ expiry migration"), in process: a
 * real sync-server with its embedded broker and a device (startDevice) syncing from it, soft keys.
 *
 * A registry written before the change holds PAN ‖ PSN tokens under key v1 and no record of schemes. The
 * operator rotates the server to v2 (PAN ‖ expiry) and the devices to v2 beside v1; until the cards are
 * re-imported the lists still carry v1 tokens and the devices recognise the card by its v1 token; after the
 * re-import the lists carry v2 tokens (those a holder gets by typing the card in the cabinet) and the devices
 * recognise it by those; once v1 is retired from a device, only the v2 token recognises it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../device/config/load.js';
import { VirtualReaderSource } from '../../device/reader/virtual.js';
import { startDevice, type RunningDevice } from '../../device/runtime/device.js';
import { ErrorCode } from '../../protocol/errors.js';
import { deriverRing, softDeriver } from '../../protocol/token-hsm.js';
import { deriveToken, type TokenKey } from '../../protocol/token.js';
import { tokeniseHolderCard } from '../../sync-server/console/cards.js';
import { startServer, type RunningServer } from '../../sync-server/server.js';
import { recordedKeyScheme } from '../../sync-server/tokenize.js';
import { expectRcError } from '../support/errors.js';
import { PAN, mirSpec } from '../support/pans.js';
import { logSink } from '../unit/runtime-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-token-migration-'));
const serverDir = join(dir, 'server');
/** v1: made before the change (its tokens are PAN ‖ PSN); v2: the version the operator rotates to (PAN ‖ expiry). */
const K1: TokenKey = { version: 1, key: randomBytes(32), scheme: 'pan-psn' };
const K2: TokenKey = { version: 2, key: randomBytes(32) };
const CARD = mirSpec(PAN.pensioner); // expiry 2029-06, PSN 01
const V1_TOKEN = deriveToken(Buffer.from(PAN.pensioner, 'ascii'), { expiry: null, psn: '01' }, K1);
const V2_TOKEN = tokeniseHolderCard(PAN.pensioner, '06/29', K2).token; // what the cabinet gives the holder who types the card
const CARDS = `person_id,pan,psn,expiry\nP-ANNA,${PAN.pensioner},01,2029-06\n`; // the banks' file: PAN, PSN (unused from v2 on) and expiry
const BENEFITS = 'person_id,category,valid_from,valid_to\nP-ANNA,pensioner,2020-01-01,2030-12-31\n';

let server: RunningServer | null = null;
let dev: RunningDevice | null = null;
let source: VirtualReaderSource;

async function* linesOf(t: string): AsyncIterable<string> {
  yield t;
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  await vi.waitFor(
    () => {
      if (!cond()) throw new Error(`timed out waiting for ${what}`);
    },
    { timeout: ms, interval: 20 },
  );
}

const { log } = logSink();

async function startDev(s: RunningServer, keys: TokenKey[]): Promise<RunningDevice> {
  source = new VirtualReaderSource(['R']);
  return startDevice({
    config: loadConfig({
      schema: 1,
      device: { id: 'bus-migration', kind: 'bus', route: '7' },
      tariff: { routes: { '7': { fullFareKopecks: 3500 } }, benefits: { pensioner: { kind: 'free' } }, repeatWindowSec: 0 },
      sync: { brokerUrl: s.mqttUrl, serverPublicKey: s.publicKeyPem },
      runtime: { dataDir: join(dir, 'device') },
    }),
    log,
    source,
    tokenKey: deriverRing(keys.map(softDeriver)),
    syncOverrides: { reconnectMinMs: 100, requestAfterMs: 300 },
  });
}

async function tap(d: RunningDevice) {
  const p = d.runtime.nextTap();
  source.present('R', CARD);
  const r = await p.finally(() => source.remove('R'));
  const last = d.store.journalRange(1, 1000).at(-1)!;
  return { result: r.result, reason: r.reason, token: last.token, keyVersion: last.keyVersion };
}

const cardRow = (s: RunningServer) => s.db;

afterAll(async () => {
  await dev?.stop();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the PAN ‖ expiry migration rides on a key rotation', () => {
  it('a registry from before the change opens with its key version recorded as PAN ‖ PSN, and refuses that version given as PAN ‖ expiry', async () => {
    // the registry as the code before the change left it: PAN ‖ PSN tokens under v1, no scheme table
    server = await startServer({ dataDir: serverDir, mqttPort: 0, httpPort: 0, tokenKey: K1, log });
    await server.api.importCsv('cards', linesOf(CARDS), false);
    await server.api.importCsv('benefits', linesOf(BENEFITS), false);
    await server.close();
    server = null;
    const raw = new Database(join(serverDir, 'registry.sqlite'));
    raw.exec('DROP TABLE token_key_schemes; DROP TABLE schema_migrations'); // a registry from before versioned migrations
    expect(raw.prepare('SELECT token, key_version FROM cards').get()).toEqual({ token: V1_TOKEN, key_version: 1 });
    raw.close();

    // the same RC_TOKEN_KEY started without RC_TOKEN_KEY_SCHEME=pan-psn would re-tokenise every card differently
    await expectRcError(
      startServer({ dataDir: serverDir, mqttPort: 0, httpPort: 0, tokenKey: { ...K1, scheme: 'pan-expiry' }, log }),
      ErrorCode.TokenSchemeMismatch,
    );
    server = await startServer({ dataDir: serverDir, mqttPort: 0, httpPort: 0, tokenKey: K1, log });
    expect(recordedKeyScheme(cardRow(server), 1)).toBe('pan-psn');
    await server.close();
    server = null;
  }, 60_000);

  it('after the rotation and before the re-import, a device holding v2 beside v1 recognises the card by its v1 token', async () => {
    server = await startServer({ dataDir: serverDir, mqttPort: 0, httpPort: 0, tokenKey: K2, log }); // rc-sync-server key rotate, restart
    expect(recordedKeyScheme(cardRow(server), 2)).toBe('pan-expiry');
    dev = await startDev(server, [K2, K1]); // rc-provision rotate: v2 beside v1
    // the server's current transit version, not just the entry: the cards import published it before the benefits import did
    const transit = server.publisher.version('transit');
    await until(
      () => dev!.store.listVersion('transit') >= transit && dev!.store.readView(V1_TOKEN).transit !== null,
      15_000,
      'the transit list with the v1 token',
    );
    expect(await tap(dev)).toEqual({ result: 'allow', reason: 'benefit', token: V1_TOKEN, keyVersion: 1 });
    // a device that held v2 only would not know the card yet: the overlap is what keeps it recognised
    expect(dev.store.readView(V2_TOKEN).transit).toBeNull();
  }, 60_000);

  it("the re-import of the banks' file under v2 gives the card the token its holder gets by typing it; the device recognises it by that", async () => {
    const s = server!;
    const v = s.publisher.version('transit');
    await s.api.importCsv('cards', linesOf(CARDS), false);
    expect(cardRow(s).prepare('SELECT token, key_version, expiry FROM cards').get()).toEqual({ token: V2_TOKEN, key_version: 2, expiry: '2029-06' });
    await until(() => dev!.store.listVersion('transit') > v && dev!.store.readView(V2_TOKEN).transit !== null, 15_000, 'the transit list with the v2 token');
    expect(dev!.store.readView(V1_TOKEN).transit).toBeNull();
    expect(await tap(dev!)).toEqual({ result: 'allow', reason: 'benefit', token: V2_TOKEN, keyVersion: 2 });
  }, 60_000);

  it('once v1 is retired from the device, the card is recognised by its v2 token only', async () => {
    await dev!.stop();
    dev = await startDev(server!, [K2]);
    await until(() => dev!.runtime.status().sync.connected, 15_000, 'the device connected');
    expect(await tap(dev)).toEqual({ result: 'allow', reason: 'benefit', token: V2_TOKEN, keyVersion: 2 });
    expect(dev.store.readView(V1_TOKEN).transit).toBeNull();
  }, 60_000);
});
