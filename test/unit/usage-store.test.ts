import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../device/store/index.js';
import { usageContext } from '../../device/store/usage-merge.js';
import { decide } from '../../protocol/rules/index.js';
import type { BusContext, Tap } from '../../protocol/rules/types.js';
import { RulesFile } from '../../protocol/rules-schema.js';
import { deviceKey, encodeUsage, type UsageCard, type UsageDay } from '../../protocol/wire/usage-codec.js';
import { expectRcError } from '../support/errors.js';

/** The device store holds fleet usage and decides on it merged with its own taps, counting none twice. */
const dir = mkdtempSync(join(tmpdir(), 'rc-usage-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tariff = RulesFile.parse(JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8'))).tariff!;
const busB: BusContext = { device: { id: 'bus-b', kind: 'bus', route: '2', vehicle: 'vb', timeZone: 'Europe/Moscow' }, tariff };
const msk = (local: string) => Date.parse(`${local}+03:00`);
const day: UsageDay = { date: '2026-11-24', startMs: msk('2026-11-24T00:00:00') };
const A = 'a'.repeat(32);
let mono = 0;
const tap = (at: string): Tap => ({ wallTime: msk(at), monotonicMs: (mono += 1_000_000), bootId: 'boot-b', direction: null, card: { token: A, expiry: null } });
const card = (c: Partial<UsageCard>): UsageCard => ({ token: A, quotaCategory: null, quotaUsed: 0, fareToday: 0, lastPaid: null, ...c });
let n = 0;
const open = () => {
  const s = Store.open(join(dir, `s${++n}.db`), { deviceId: 'bus-b' });
  s.setUsageContext(usageContext(tariff));
  return s;
};

describe('fleet usage in the device store', () => {
  it('a tap on bus B sees bus A fares of the day and its last paid tap (transfer)', () => {
    const s = open();
    expect(
      s.applyUsage({
        fromVersion: null,
        toVersion: 1,
        records: encodeUsage(day, [card({ fareToday: 3500, lastPaid: { effMs: msk('2026-11-24T09:50:00'), routeIndex: 0, transfers: 0 } })], []),
      }),
    ).toBe(true);
    const { decision } = s.decideAndCommit(tap('2026-11-24T10:00:00'), (v) => decide(tap('2026-11-24T10:00:00'), v, busB));
    expect(decision).toMatchObject({ reason: 'transfer', fareKopecks: 0 });
    s.close();
  });

  it('own taps above the watermark are added once; at the watermark they are in the fleet figure and not added again', () => {
    const s = open();
    s.applyUsage({ fromVersion: null, toVersion: 1, records: encodeUsage(day, [card({ fareToday: 3500 })], []) }); // bus A: 35 ₽
    // two own taps on route 2, far apart (no transfer): 35 ₽, then 30 ₽ (the 100 ₽ cap counts bus A's 35 ₽)
    s.decideAndCommit(tap('2026-11-24T11:00:00'), (v) => decide(tap('2026-11-24T11:00:00'), v, busB));
    const second = s.decideAndCommit(tap('2026-11-24T13:00:00'), (v) => decide(tap('2026-11-24T13:00:00'), v, busB));
    expect(second.decision).toMatchObject({ reason: 'capped', fareKopecks: 3000 });
    expect(s.readView(A).counters['fare@2026-11-24']).toBe(10_000);
    // the server counted the first own tap (watermark 1): fleet 70 ₽ = bus A + own seq 1
    s.applyUsage({ fromVersion: 1, toVersion: 2, records: encodeUsage(day, [card({ fareToday: 7000 })], [{ key: deviceKey('bus-b'), seq: 1 }]) });
    expect(s.usageState()).toMatchObject({ version: 2, watermark: 1 });
    expect(s.readView(A).counters['fare@2026-11-24']).toBe(10_000);
    // a third bus charged 20 ₽ meanwhile (it did not know yet): fleet 90 ₽ + own unseen 30 ₽; nothing left of the cap
    s.applyUsage({ fromVersion: 2, toVersion: 3, records: encodeUsage(day, [card({ fareToday: 9000 })], [{ key: deviceKey('bus-b'), seq: 1 }]) });
    expect(s.readView(A).counters['fare@2026-11-24']).toBe(12_000);
    const { decision } = s.decideAndCommit(tap('2026-11-24T15:00:00'), (v) => decide(tap('2026-11-24T15:00:00'), v, busB));
    expect(decision).toMatchObject({ reason: 'capped', fareKopecks: 0 });
    s.close();
  });

  it('without a usage context (no tariff yet) the view is the device own', () => {
    const s = open();
    s.applyUsage({ fromVersion: null, toVersion: 1, records: encodeUsage(day, [card({ fareToday: 3500 })], []) });
    s.setUsageContext(null);
    expect(s.readView(A).counters).toEqual({});
    s.close();
  });

  it('versions only move forward; a delta from another version or day is a gap; bad records change nothing', () => {
    const s = open();
    s.applyUsage({ fromVersion: null, toVersion: 5, records: encodeUsage(day, [card({ fareToday: 3500 })], []) });
    expect(s.applyUsage({ fromVersion: null, toVersion: 5, records: encodeUsage(day, [], []) })).toBe(false);
    expectRcError(() => s.applyUsage({ fromVersion: null, toVersion: 4, records: encodeUsage(day, [], []) }), 'store.list-rollback');
    expectRcError(() => s.applyUsage({ fromVersion: 3, toVersion: 6, records: encodeUsage(day, [], []) }), 'store.list-version-gap');
    const tomorrow = { date: '2026-11-25', startMs: day.startMs + 86_400_000 };
    expectRcError(() => s.applyUsage({ fromVersion: 5, toVersion: 6, records: encodeUsage(tomorrow, [], []) }), 'store.list-version-gap');
    expectRcError(() => s.applyUsage({ fromVersion: null, toVersion: 6, records: Buffer.alloc(30) }), 'store.list-invalid');
    expect(s.usageState().version).toBe(5);
    expect(s.readView(A).counters).toEqual({ 'fare@2026-11-24': 3500 });
    // a new day's snapshot replaces every card
    s.applyUsage({ fromVersion: null, toVersion: 6, records: encodeUsage(tomorrow, [], []) });
    expect(s.readView(A).counters).toEqual({});
    s.close();
  });

  it('a store without a usage context (no tariff: turnstiles, canteens) keeps no per-tap additions; pruning the journal forgets old ones', () => {
    const s = open();
    const count = () =>
      (s as unknown as { db: { prepare(q: string): { pluck(): { get(): number } } } }).db.prepare('SELECT count(*) FROM usage_adds').pluck().get();
    s.decideAndCommit(tap('2026-11-24T11:00:00'), (v) => decide(tap('2026-11-24T11:00:00'), v, busB));
    expect(count()).toBe(1);
    s.setUsageContext(null);
    s.decideAndCommit(tap('2026-11-24T13:00:00'), (v) => decide(tap('2026-11-24T13:00:00'), v, busB));
    expect(count()).toBe(1);
    s.ackUpTo(2);
    s.pruneAcked(msk('2026-11-25T00:00:00'));
    expect(count()).toBe(0);
    s.close();
  });
});
