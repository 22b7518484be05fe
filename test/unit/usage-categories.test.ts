import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openTestRegistry } from '../support/test-db.js';
import { BUILT_IN_WIRE_IDS, DEVICE_BUILT_IN_TABLE, deviceCategoryTable, wireStandIn, type CategoryTable } from '../../protocol/categories.js';
import { createLogger } from '../../protocol/log.js';
import { decide } from '../../protocol/rules/index.js';
import type { BusContext } from '../../protocol/rules/types.js';
import { RulesFile } from '../../protocol/rules-schema.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { RECORD_SIZE } from '../../protocol/wire/codec.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { loadPublicKey } from '../../protocol/wire/envelope.js';
import { openUsage } from '../../protocol/wire/usage-codec.js';
import { applyImport, parseImport, type ImportKind } from '../../sync-server/import.js';
import { publishedCategoryIds } from '../../sync-server/categories.js';
import { Ingest } from '../../sync-server/ingest.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { Publisher } from '../../sync-server/publisher.js';
import { UsagePublisher } from '../../sync-server/usage-publisher.js';
import { msk } from '../support/journal-rows.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { openBusB, tapper } from '../support/usage-bus.js';

/**
 * Usage records carry categories defined as data (issue 10): a regional category the
 * operator adds in the published rules gets a wire id from the server; bus B decodes
 * the fleet usage with the rules it holds, so the category's monthly quota is counted
 * across buses, in the same 24 bytes per card.
 */
const log = createLogger({ level: 'silent' });
const RULES = {
  schema: 1,
  tariff: {
    version: 1,
    routes: { '1': { fullFareKopecks: 3500 }, '2': { fullFareKopecks: 3500 } },
    categories: { 'rural-commuter': { name: { ru: 'Житель села', en: 'Rural commuter' } } },
    benefits: {
      pensioner: { kind: 'percent', percentOff: 50, quota: { trips: 2, per: 'month', onExhausted: 'full-fare' } },
      'rural-commuter': { kind: 'free', quota: { trips: 2, per: 'month', onExhausted: 'full-fare' } },
    },
    repeatWindowSec: 60,
  },
};
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'rc-usage-cat-'));
  dirs.push(dir);
  const db = openTestRegistry(dir);
  const keys = loadOrCreateSigningKey(dir);
  const pub = new Publisher(db, keys.privateKey, log);
  pub.setConfig('rules', RULES); // the server gives rural-commuter its wire id (the first after the built-in ones)
  for (const [kind, text] of [
    ['cards', cardsCsv(0, 20)],
    ['benefits', benefitsCsv(10, 3, 'rural-commuter')],
  ] as [ImportKind, string][]) {
    async function* lines() {
      yield text;
    }
    const { rows } = await parseImport(kind, lines(), {
      skipInvalid: false,
      tokenKey: DEV_TOKEN_KEY,
      today: '2026-11-01',
      categories: publishedCategoryIds(db),
    });
    pub.commit(applyImport(db, kind, rows, '2026-11-01'));
  }
  const published = RulesFile.parse(JSON.parse(db.prepare("SELECT doc FROM configs WHERE name = 'rules'").pluck().get() as string));
  const ingest = new Ingest(db, { dayEndsAt: '00:00' });
  let seq = 0;
  const uploadA = (card: number, at: string) => {
    const time = new Date(msk(at)).toISOString();
    const e: WireJournalEntry = {
      seq: ++seq,
      time,
      token: tokenOf(card),
      kind: 'bus',
      result: 'allow',
      reason: 'benefit',
      fareKopecks: 0,
      benefit: 'rural-commuter',
      lists: { transit: 1 },
      data: { effectiveTime: time, vehicle: 'v-bus-a', route: '1', flags: [] },
    };
    ingest.store('bus-a', null, { device: 'bus-a', entries: [e] }, new Date(msk(at) + 1000));
  };
  const usage = new UsagePublisher(db, keys.privateKey, log, { settlement: { dayEndsAt: '00:00' } });
  return { db, published, pubKey: loadPublicKey(keys.publicKeyPem), usage, uploadA };
}

const tapOn = tapper();

describe('usage records carry categories defined as data', () => {
  it("a new regional category's monthly quota is counted across two buses, 24 bytes per card", async () => {
    const r = await setup();
    const wireId = r.published.tariff!.categories['rural-commuter']!.wireId;
    expect(wireId).toBeGreaterThanOrEqual(BUILT_IN_WIRE_IDS);
    const tariff = r.published.tariff!;
    const busB: BusContext = { device: { id: 'bus-b', kind: 'bus', route: '2', vehicle: 'vb', timeZone: 'Europe/Moscow' }, tariff };
    const store = openBusB(dirs[0]!, tariff, 'rural-commuter', () => deviceCategoryTable(r.published));
    const ride = (card: number, at: string) => store.decideAndCommit(tapOn(card, at), (v) => decide(tapOn(card, at), v, busB)).decision;

    // bus A: card 10 uses the month's two free rural-commuter trips
    r.uploadA(10, '2026-11-03T08:00:00');
    r.uploadA(10, '2026-11-24T07:00:00');
    const t = r.usage.tick(new Date(msk('2026-11-24T10:00:00')))!;
    const snap = openUsage(t.snapshot!, r.pubKey, new Date(msk('2026-11-24T10:00:00')));
    expect(snap.records.length).toBe((1 + 1 + 1) * RECORD_SIZE); // day + the card + bus A's watermark: 24 bytes per card
    expect(snap.records[RECORD_SIZE + 17]).toBe(wireId); // the card record names the category by its wire id
    store.applyUsage({ fromVersion: null, toVersion: snap.header.to, records: snap.records });

    expect(store.readView(tokenOf(10)).counters).toMatchObject({ 'quota:rural-commuter@2026-11': 2 });
    expect(ride(10, '2026-11-24T10:00:05')).toMatchObject({ reason: 'quota-exhausted', fareKopecks: 3500 });
    store.close();
    r.db.close();
  });

  it('usage applied before the rules that define the category: counted under its id once the rules arrive', async () => {
    const r = await setup();
    const tariff = r.published.tariff!;
    let cats: CategoryTable = DEVICE_BUILT_IN_TABLE; // the device holds no rules defining rural-commuter yet
    const wireId = tariff.categories['rural-commuter']!.wireId!;
    const store = openBusB(dirs[0]!, tariff, wireStandIn(wireId), () => cats); // its list entry reads as the stand-in too
    r.uploadA(10, '2026-11-24T07:00:00');
    const t = r.usage.tick(new Date(msk('2026-11-24T10:00:00')))!;
    const snap = openUsage(t.snapshot!, r.pubKey, new Date(msk('2026-11-24T10:00:00')));
    store.applyUsage({ fromVersion: null, toVersion: snap.header.to, records: snap.records });
    expect(store.readView(tokenOf(10)).counters).toEqual({ [`quota:${wireStandIn(wireId)}@2026-11`]: 1 });
    cats = deviceCategoryTable(r.published); // the published rules are applied
    expect(store.readView(tokenOf(10)).counters).toMatchObject({ 'quota:rural-commuter@2026-11': 1 });
    store.close();
    r.db.close();
  });
});
