import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mergeUsage, usageContext } from '../../device/store/usage-merge.js';
import type { TransitEntry } from '../../protocol/lists.js';
import { decide } from '../../protocol/rules/index.js';
import type { BusContext, CounterAdd, Tap, View } from '../../protocol/rules/types.js';
import { RulesFile } from '../../protocol/rules-schema.js';
import type { UsageCard, UsageDay } from '../../protocol/wire/usage-codec.js';

/** A device's own counters and marks merged with the fleet's usage: nothing counted twice, nothing missed. */
const tariff = RulesFile.parse(JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8'))).tariff!;
const ctx = usageContext(tariff); // routes 1..4 (index 0..3), pensioner: 2 trips a month at 50 %, transfer 1 h, cap 100 ₽
const msk = (local: string) => Date.parse(`${local}+03:00`);
const day: UsageDay = { date: '2026-11-24', startMs: msk('2026-11-24T00:00:00') };
const P = 'b'.repeat(32);
const none: Pick<View, 'counters' | 'marks'> = { counters: {}, marks: {} };
const card = (c: Partial<UsageCard>): UsageCard => ({ token: P, quotaCategory: null, quotaUsed: 0, fareToday: 0, lastPaid: null, ...c });

describe('usage merge', () => {
  it('without fleet usage the view is the device own', () => {
    const local = { counters: { 'fare@2026-11-24': 3500 }, marks: {} };
    expect(mergeUsage(local, null, [], ctx)).toBe(local);
  });

  it('fleet counters plus own taps above the watermark; own taps at or below it are in the fleet figure already', () => {
    // own: 1 quota trip counted by the server (seq ≤ watermark) + 1 not yet; fleet: 2 (own counted one + one on another bus)
    const local = { counters: { 'quota:pensioner@2026-11': 2, 'fare@2026-11-24': 3500 }, marks: {} };
    const unseen: CounterAdd[] = [
      { name: 'quota:pensioner', period: '2026-11', by: 1 },
      { name: 'fare', period: '2026-11-24', by: 1750 },
    ];
    const m = mergeUsage(local, { card: card({ quotaCategory: 'pensioner', quotaUsed: 2, fareToday: 3500 }), day }, unseen, ctx);
    expect(m.counters).toEqual({ 'quota:pensioner@2026-11': 3, 'fare@2026-11-24': 5250 });
  });

  it('never counts fewer than the device saw itself (a server that knows less)', () => {
    const local = { counters: { 'fare@2026-11-24': 7000 }, marks: {} };
    expect(mergeUsage(local, { card: card({ fareToday: 3500 }), day }, [], ctx).counters).toEqual({ 'fare@2026-11-24': 7000 });
  });

  it('the later last paid tap wins; on a tie the one with more transfers; the last ride stays local', () => {
    const lastRide = { effMs: msk('2026-11-24T09:00:00'), monoMs: 5, bootId: 'b', route: '1', vehicle: 'v1' };
    const lpLocal = { effMs: msk('2026-11-24T09:00:00'), monoMs: 5, bootId: 'b', route: '1', transfers: 0 };
    const local = { counters: {}, marks: { lastRide, lastPaid: lpLocal } };
    const later = mergeUsage(local, { card: card({ lastPaid: { effMs: msk('2026-11-24T09:30:00'), routeIndex: 2, transfers: 0 } }), day }, [], ctx);
    expect(later.marks).toEqual({ lastRide, lastPaid: { effMs: msk('2026-11-24T09:30:00'), monoMs: 0, bootId: 'fleet', route: '3', transfers: 0 } });
    const earlier = mergeUsage(local, { card: card({ lastPaid: { effMs: msk('2026-11-24T08:00:00'), routeIndex: 2, transfers: 0 } }), day }, [], ctx);
    expect(earlier.marks.lastPaid).toBe(lpLocal);
    const tie = mergeUsage(local, { card: card({ lastPaid: { effMs: lpLocal.effMs, routeIndex: 0, transfers: 1 } }), day }, [], ctx);
    expect(tie.marks.lastPaid).toMatchObject({ route: '1', transfers: 1 });
  });
});

describe('bus B decides as if it had seen bus A (decide on the merged view)', () => {
  const busB: BusContext = { device: { id: 'bus-b', kind: 'bus', route: '2', vehicle: 'vb', timeZone: 'Europe/Moscow' }, tariff };
  const pensioner: TransitEntry = { token: P, cardExpiry: '2030-12', benefits: [{ category: 'pensioner', validFrom: '2020-01-01', validTo: '2099-12-31' }] };
  const at = msk('2026-11-24T10:00:00');
  const tap: Tap = { wallTime: at, monotonicMs: 1000, bootId: 'boot-b', direction: null, card: { token: P, expiry: null } };
  const view = (m: Pick<View, 'counters' | 'marks'>, transit: TransitEntry | null): View => ({ transit, stop: null, schools: {}, listVersions: {}, ...m });

  it('the transfer: a paid tap on bus A (route 1) 20 min ago makes the ride on bus B (route 2) a transfer', () => {
    const fleet = { card: card({ fareToday: 3500, lastPaid: { effMs: at - 20 * 60_000, routeIndex: 0, transfers: 0 } }), day };
    expect(decide(tap, view(none, null), busB)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
    expect(decide(tap, view(mergeUsage(none, fleet, [], ctx), null), busB)).toMatchObject({ reason: 'transfer', fareKopecks: 0 });
  });

  it('the monthly quota: two benefit trips on other buses exhaust it on bus B', () => {
    const fleet = { card: card({ quotaCategory: 'pensioner', quotaUsed: 2, fareToday: 3500 }), day };
    expect(decide(tap, view(none, pensioner), busB)).toMatchObject({ reason: 'benefit', fareKopecks: 1750 });
    expect(decide(tap, view(mergeUsage(none, fleet, [], ctx), pensioner), busB)).toMatchObject({ reason: 'quota-exhausted', fareKopecks: 3500 });
  });

  it('the daily cap: 85 ₽ paid on other buses leaves 15 ₽ of the 100 ₽ cap on bus B', () => {
    const fleet = { card: card({ fareToday: 8500 }), day };
    expect(decide(tap, view(mergeUsage(none, fleet, [], ctx), null), busB)).toMatchObject({ reason: 'capped', fareKopecks: 1500 });
  });
});
