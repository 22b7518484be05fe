import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openTestRegistry } from '../support/test-db.js';
import { ErrorCode } from '../../protocol/errors.js';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { ChargingQueue, SimulatedCharger, type RetryPolicy } from '../../sync-server/charging.js';
import { applyImport, parseImport } from '../../sync-server/import.js';
import { Ingest, type IngestLimits } from '../../sync-server/ingest.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { Publisher } from '../../sync-server/publisher.js';
import { type Db } from '../../sync-server/registry.js';
import { queryCharges, queryJournal, Settlement } from '../../sync-server/settlement/index.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { fullFareEntry } from '../support/journal-rows.js';

/**
 * Issue 13 item 7: the server does not charge, stop-list or store on a device's word.
 * A real registry with the settlement fixture's rules (full fare 35 ₽ on routes 1–4, daily cap 100 ₽).
 */
const log = createLogger({ level: 'silent' });
const RULES = JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8')) as unknown;
const NOW = new Date('2026-11-20T12:00:00+03:00');
const DAY = 86_400_000;

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

async function registry(limits: Partial<IngestLimits> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rc-guard-'));
  const db = openTestRegistry(dir);
  cleanup.push(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const pub = new Publisher(db, loadOrCreateSigningKey(dir).privateKey, log, {
    manifestTtlMs: DAY,
    deltaRetentionMs: DAY,
    chunkRecords: 100,
    maxDeltaRecords: 1000,
  });
  pub.setTransport({ publish: async () => undefined });
  async function* lines() {
    yield cardsCsv(0, 20);
  }
  const { rows } = await parseImport('cards', lines(), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-01' });
  await pub.publish(pub.commit(applyImport(db, 'cards', rows, '2026-11-01')));
  pub.setConfig('rules', RULES);
  const ingest = new Ingest(db, {}, limits);
  const queue = (retry?: RetryPolicy) =>
    new ChargingQueue(db, new SimulatedCharger(db), async (d) => void (await pub.publish(pub.commit(d))), log, new Settlement(db), retry);
  return { db, pub, ingest, queue };
}

function entry(seq: number, token: string, at: string, o: { fare?: number; route?: string; vehicle?: string } = {}): WireJournalEntry {
  const time = new Date(`${at}+03:00`).toISOString();
  return fullFareEntry(seq, token, time, {
    fareKopecks: o.fare ?? 3500,
    lists: { transit: 1 },
    data: { effectiveTime: time, route: o.route ?? '1', vehicle: o.vehicle ?? 'A1', flags: ['deferred-charge'] },
  });
}

const charges = (db: Db) => queryCharges(db, { limit: 100 }).charges.map((c) => [c.token, c.amountKopecks, c.status]);
const stopListed = (db: Db, token: string) => db.prepare('SELECT count(*) FROM stoplist WHERE token = ?').pluck().get(token) === 1;

describe('money is not taken on a device word', () => {
  it("a device's 10,000,000-kopeck entries charge only the settled fare: the route's full fare, bounded by the daily cap", async () => {
    const r = await registry();
    const known = tokenOf(3);
    const unknown = tokenOf(900); // not a connected card
    const other = tokenOf(901);
    const big = { fare: 10_000_000 };
    r.ingest.store(
      'bus-x',
      null,
      {
        device: 'bus-x',
        entries: [
          entry(1, unknown, '2026-11-10T07:00:00', big),
          entry(2, known, '2026-11-10T07:30:00', big),
          // five trips far apart: 5 × 35 ₽ > the 100 ₽ cap
          ...[8, 10, 12, 14, 16].map((h, i) => entry(3 + i, other, `2026-11-10T${String(h).padStart(2, '0')}:00:00`, big)),
        ],
      },
      NOW,
    );
    await r.queue().runOnce(NOW);
    expect(charges(r.db)).toEqual([
      [unknown, 3500, 'charged'],
      [known, 3500, 'charged'],
      [other, 10000, 'charged'],
    ]);
  });

  it('a declined charge is retried by the policy; the card is stop-listed only when the last attempt is declined', async () => {
    const r = await registry();
    const t = tokenOf(4);
    r.ingest.store('bus-x', null, { device: 'bus-x', entries: [entry(1, t, '2026-11-10T09:00:00')] }, NOW);
    const q = r.queue({ attempts: 3, overDays: 2 });
    q.setDeclined([t]);
    const row = () =>
      r.db.prepare('SELECT status, attempts, retry_at FROM charges WHERE token = ?').get(t) as { status: string; attempts: number; retry_at: string };
    expect(await q.runOnce(NOW)).toBe(0);
    expect(row()).toEqual({ status: 'pending', attempts: 1, retry_at: new Date(NOW.getTime() + DAY).toISOString() });
    expect(stopListed(r.db, t)).toBe(false);
    const v = r.pub.version('stoplist');
    expect(await q.runOnce(new Date(NOW.getTime() + DAY / 2))).toBe(0); // not due yet: not tried
    expect(row().attempts).toBe(1);
    expect(await q.runOnce(new Date(NOW.getTime() + DAY))).toBe(0);
    expect(row()).toMatchObject({ status: 'pending', attempts: 2 });
    expect(stopListed(r.db, t)).toBe(false);
    expect(r.pub.version('stoplist')).toBe(v);
    expect(await q.runOnce(new Date(NOW.getTime() + 2 * DAY))).toBe(1);
    expect(row()).toMatchObject({ status: 'declined', attempts: 3, retry_at: null });
    expect(stopListed(r.db, t)).toBe(true);
    expect(r.pub.version('stoplist')).toBe(v + 1);
  });

  it('a charge accepted on a retry never puts the card on the stop-list', async () => {
    const r = await registry();
    const t = tokenOf(5);
    r.ingest.store('bus-x', null, { device: 'bus-x', entries: [entry(1, t, '2026-11-10T09:00:00')] }, NOW);
    const q = r.queue({ attempts: 2, overDays: 1 });
    q.setDeclined([t]);
    expect(await q.runOnce(NOW)).toBe(0);
    r.db.prepare('DELETE FROM decline_tokens').run(); // the holder topped up the account
    expect(await q.runOnce(new Date(NOW.getTime() + DAY))).toBe(0);
    expect(charges(r.db)).toEqual([[t, 3500, 'charged']]);
    expect(stopListed(r.db, t)).toBe(false);
  });
});

describe('journal ingest: per-device rate and impossible trips', () => {
  it('entries over the device rate are neither stored nor acknowledged, and arrive when resent: nothing is lost', async () => {
    const r = await registry({ burst: 5, perSecond: 1 });
    const batch = { device: 'bus-r', entries: Array.from({ length: 8 }, (_, i) => entry(i + 1, tokenOf(i), `2026-11-10T0${i + 1}:00:00`)) };
    expect(r.ingest.store('bus-r', null, batch, NOW)).toMatchObject({ upTo: 5, stored: 5, limited: 3 });
    // resent at once: the bucket is empty, the whole batch is refused with a code and the ack does not move
    expect(() => r.ingest.store('bus-r', null, batch, NOW)).toThrow(expect.objectContaining({ code: ErrorCode.ServerRateLimited }));
    expect(r.db.prepare("SELECT count(*) FROM journal WHERE device = 'bus-r'").pluck().get()).toBe(5);
    // another device has its own bucket
    expect(r.ingest.store('bus-s', null, { device: 'bus-s', entries: [entry(1, tokenOf(9), '2026-11-10T09:00:00')] }, NOW)).toMatchObject({ upTo: 1 });
    // three seconds later the device's resend is taken whole
    expect(r.ingest.store('bus-r', null, batch, new Date(NOW.getTime() + 3000))).toMatchObject({ upTo: 8, stored: 3, limited: 0 });
    expect(r.db.prepare("SELECT count(DISTINCT seq) FROM journal WHERE device = 'bus-r'").pluck().get()).toBe(8);
  });

  it('the same card on two vehicles within 60 s is stored flagged settlement.impossible-trip, listed as flagged, and not charged twice', async () => {
    const r = await registry();
    const t = tokenOf(6);
    r.ingest.store('bus-a', null, { device: 'bus-a', entries: [entry(1, t, '2026-11-10T09:00:00', { vehicle: 'A1', route: '1' })] }, NOW);
    r.ingest.store('bus-b', null, { device: 'bus-b', entries: [entry(1, t, '2026-11-10T09:00:30', { vehicle: 'B7', route: '3' })] }, NOW);
    // the rear-door validator of the same bus is no impossible trip
    r.ingest.store('bus-a2', null, { device: 'bus-a2', entries: [entry(1, tokenOf(7), '2026-11-10T09:00:00', { vehicle: 'A1' })] }, NOW);
    r.ingest.store('bus-a', null, { device: 'bus-a', entries: [entry(2, tokenOf(7), '2026-11-10T09:00:20', { vehicle: 'A1' })] }, NOW);
    const flagged = queryJournal(r.db, { flagged: true, limit: 10 }).entries;
    expect(flagged.map((e) => [e.device, e.seq, e.flagged])).toEqual([['bus-b', 1, ErrorCode.SettlementImpossibleTrip]]);
    // a later trip of the card that day: its day is settled with the flagged entry left out, and the flag stays
    r.ingest.store('bus-a', null, { device: 'bus-a', entries: [entry(3, t, '2026-11-10T18:00:00', { vehicle: 'A1' })] }, NOW);
    await r.queue().runOnce(NOW);
    expect(queryJournal(r.db, { flagged: true, limit: 10 }).entries).toHaveLength(1);
    expect(charges(r.db).filter(([tok]) => tok === t)).toEqual([[t, 7000, 'charged']]);
  });
});
