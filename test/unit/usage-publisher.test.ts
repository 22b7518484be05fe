import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openTestRegistry } from '../support/test-db.js';
import { Store } from '../../device/store/index.js';
import { createLogger } from '../../protocol/log.js';
import { decide } from '../../protocol/rules/index.js';
import type { BusContext } from '../../protocol/rules/types.js';
import { RulesFile } from '../../protocol/rules-schema.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { loadPublicKey } from '../../protocol/wire/envelope.js';
import { decodeUsage, deviceKey, openUsage } from '../../protocol/wire/usage-codec.js';
import { applyImport, parseImport, type ImportKind } from '../../sync-server/import.js';
import { Ingest } from '../../sync-server/ingest.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { Publisher } from '../../sync-server/publisher.js';
import { UsagePublisher } from '../../sync-server/usage-publisher.js';
import { msk } from '../support/journal-rows.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { openBusB, tapper } from '../support/usage-bus.js';

/** The server's fleet usage from every device's uploaded journal, applied by another device's store (real SQLite both sides). */
const log = createLogger({ level: 'silent' });
const RULES = JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8')) as unknown;
const tariff = RulesFile.parse(RULES).tariff!;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup(maxCardsPerTick?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'rc-usage-pub-'));
  dirs.push(dir);
  const db = openTestRegistry(dir);
  const keys = loadOrCreateSigningKey(dir);
  const pub = new Publisher(db, keys.privateKey, log);
  for (const [kind, text] of [
    ['cards', cardsCsv(0, 20)],
    ['benefits', benefitsCsv(10, 5)],
  ] as [ImportKind, string][]) {
    async function* lines() {
      yield text;
    }
    const { rows } = await parseImport(kind, lines(), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-01' });
    pub.commit(applyImport(db, kind, rows, '2026-11-01'));
  }
  pub.setConfig('rules', RULES);
  const ingest = new Ingest(db, { dayEndsAt: '00:00' });
  const seqs = new Map<string, number>();
  const upload = (device: string, card: number, at: string, route: string, fare: number, reason = 'full-fare') => {
    const seq = (seqs.get(device) ?? 0) + 1;
    seqs.set(device, seq);
    const time = new Date(msk(at)).toISOString();
    const e: WireJournalEntry = {
      seq,
      time,
      token: tokenOf(card),
      kind: 'bus',
      result: 'allow',
      reason,
      fareKopecks: fare,
      benefit: null,
      lists: { transit: 1 },
      data: { effectiveTime: time, vehicle: `v-${device}`, route, flags: ['deferred-charge'] },
    };
    ingest.store(device, null, { device, entries: [e] }, new Date(msk(at) + 1000));
  };
  const usage = new UsagePublisher(db, keys.privateKey, log, { settlement: { dayEndsAt: '00:00' }, ...(maxCardsPerTick ? { maxCardsPerTick } : {}) });
  const sent: { topic: string; payload: Buffer; retain: boolean }[] = [];
  usage.setTransport({ publish: async (topic, payload, retain) => void sent.push({ topic, payload, retain }) });
  const store = openBusB(dir, tariff, 'pensioner');
  return { db, pubKey: loadPublicKey(keys.publicKeyPem), usage, upload, sent, store };
}

const busB: BusContext = { device: { id: 'bus-b', kind: 'bus', route: '2', vehicle: 'vb', timeZone: 'Europe/Moscow' }, tariff };
const tapOn = tapper();
const ride = (s: Store, card: number, at: string) => s.decideAndCommit(tapOn(card, at), (v) => decide(tapOn(card, at), v, busB)).decision;

describe('usage publisher', () => {
  it('bus B decides on bus A taps: transfer, monthly quota, daily cap; its own counted taps are not added twice', async () => {
    const r = await setup();
    r.upload('bus-a', 1, '2026-11-24T09:50:00', '1', 3500); // card 1: full fare on route 1
    r.upload('bus-a', 10, '2026-11-03T08:00:00', '1', 1750, 'benefit'); // pensioner: 2 quota trips this month on bus A
    r.upload('bus-a', 10, '2026-11-24T07:00:00', '1', 1750, 'benefit');
    r.upload('bus-a', 2, '2026-11-24T07:00:00', '1', 3500); // card 2: 70 ₽ today on buses A and C (the server counts its own decision of each tap)
    r.upload('bus-c', 2, '2026-11-24T08:30:00', '3', 3500);
    const t1 = r.usage.tick(new Date(msk('2026-11-24T10:00:00')))!;
    expect(t1.snapshot).not.toBeNull();
    expect(t1.cards).toBe(3);
    const snap = openUsage(t1.snapshot!, r.pubKey, new Date(msk('2026-11-24T10:00:00')));
    expect(snap.records.length).toBe((1 + 3 + 2) * 24); // day + 3 cards + 2 watermarks
    r.store.applyUsage({ fromVersion: snap.header.from, toVersion: snap.header.to, records: snap.records });
    expect(r.sent.map((s) => [s.topic, s.retain])).toEqual([['rc/v1/usage/snapshot', true]]);

    expect(ride(r.store, 1, '2026-11-24T10:00:05')).toMatchObject({ reason: 'transfer', fareKopecks: 0 });
    expect(ride(r.store, 10, '2026-11-24T10:00:05')).toMatchObject({ reason: 'quota-exhausted', fareKopecks: 3500 });
    expect(ride(r.store, 2, '2026-11-24T10:00:05')).toMatchObject({ reason: 'capped', fareKopecks: 3000 });
    expect(r.usage.tick(new Date(msk('2026-11-24T10:00:06')))).toBeNull(); // nothing new: nothing published

    // bus B uploads its three taps: the delta moves its watermark and carries the new counts (own taps counted once)
    r.upload('bus-b', 1, '2026-11-24T10:00:05', '2', 0, 'transfer');
    r.upload('bus-b', 10, '2026-11-24T10:00:05', '2', 3500, 'quota-exhausted');
    r.upload('bus-b', 2, '2026-11-24T10:00:05', '2', 3000, 'capped');
    const t2 = r.usage.tick(new Date(msk('2026-11-24T10:00:10')))!;
    expect(t2.delta).not.toBeNull();
    const d = openUsage(t2.delta!, r.pubKey, new Date(msk('2026-11-24T10:00:10')));
    expect(d.header.from).toBe(snap.header.to);
    expect(decodeUsage(d.records).watermarks).toEqual([{ key: deviceKey('bus-b'), seq: 3 }]);
    expect(r.store.readView(tokenOf(10)).counters).toEqual({ 'fare@2026-11-24': 1750 + 3500, 'quota:pensioner@2026-11': 2 });
    r.store.applyUsage({ fromVersion: d.header.from, toVersion: d.header.to, records: d.records });
    expect(r.store.usageState()).toMatchObject({ version: d.header.to, watermark: 3 });
    expect(r.store.readView(tokenOf(10)).counters).toEqual({ 'fare@2026-11-24': 1750 + 3500, 'quota:pensioner@2026-11': 2 });
    expect(r.store.readView(tokenOf(2)).counters).toEqual({ 'fare@2026-11-24': 10_000 });

    // bus C was offline and uploads late: the day re-counts and bus B sees it in the next delta
    r.upload('bus-c', 1, '2026-11-24T10:30:00', '4', 3500);
    const t3 = r.usage.tick(new Date(msk('2026-11-24T10:31:00')))!;
    const d3 = openUsage(t3.delta!, r.pubKey, new Date(msk('2026-11-24T10:31:00')));
    r.store.applyUsage({ fromVersion: d3.header.from, toVersion: d3.header.to, records: d3.records });
    expect(r.store.readView(tokenOf(1)).counters).toEqual({ 'fare@2026-11-24': 7000 });
    expect(r.store.readView(tokenOf(1)).marks.lastPaid).toMatchObject({ route: '4', bootId: 'fleet' });
    r.store.close();
    r.db.close();
  });

  it('a new day publishes a snapshot of that day only', async () => {
    const r = await setup();
    r.upload('bus-a', 1, '2026-11-24T09:50:00', '1', 3500);
    r.usage.tick(new Date(msk('2026-11-24T10:00:00')));
    const t = r.usage.tick(new Date(msk('2026-11-25T00:00:01')))!;
    expect(t.delta).toBeNull();
    const s = decodeUsage(openUsage(t.snapshot!, r.pubKey, new Date(msk('2026-11-25T00:00:01'))).records, false);
    expect(s.day).toEqual({ date: '2026-11-25', startMs: msk('2026-11-25T00:00:00') });
    expect(s.cards).toEqual([]); // card 1 rode yesterday, no quota: nothing current
    r.store.close();
    r.db.close();
  });

  it('a big upload is recomputed over several ticks, never more cards per tick than allowed', async () => {
    const r = await setup(2);
    r.upload('bus-a', 1, '2026-11-24T09:00:00', '1', 3500);
    r.usage.tick(new Date(msk('2026-11-24T10:00:00')));
    for (const card of [2, 3, 4, 5, 6]) r.upload('bus-a', card, '2026-11-24T09:50:00', '1', 3500);
    const changed = [11, 12, 13, 14].map((s) => r.usage.tick(new Date(msk(`2026-11-24T10:00:${s}`)))?.changed ?? 0);
    expect(changed).toEqual([2, 2, 1, 0]);
    expect(r.usage.tick(new Date(msk('2026-11-24T10:00:20')))).toBeNull();
    r.store.close();
    r.db.close();
  });
});
