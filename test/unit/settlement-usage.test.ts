import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TransitEntry } from '../../protocol/lists.js';
import { RulesFile } from '../../protocol/rules-schema.js';
import { fleetUsage, settlementOptions } from '../../sync-server/settlement/index.js';
import { busRowMaker, msk } from '../support/journal-rows.js';

/** Fleet usage: the counters and marks of the cards active now, from every device's taps (pure). */
const tariff = RulesFile.parse(JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8'))).tariff!;
const o = settlementOptions();
const A = 'a'.repeat(32);
const P = 'b'.repeat(32); // a pensioner
const Q = 'c'.repeat(32); // rode last month only
const transit = (t: string): TransitEntry | null =>
  t === P ? { token: P, cardExpiry: '2030-12', benefits: [{ category: 'pensioner', validFrom: '2020-01-01', validTo: '2099-12-31' }] } : null;
const row = busRowMaker(o);

describe('fleet usage', () => {
  const rows = [
    row(P, 'bus-a', '2026-11-03T08:00:00', '1'),
    row(P, 'bus-b', '2026-11-24T09:00:00', '2'),
    row(A, 'bus-b', '2026-11-24T09:40:00', '2'),
    row(A, 'bus-a', '2026-11-24T07:00:00', '1'),
    row(Q, 'bus-c', '2026-10-31T10:00:00', '1'),
  ];
  const now = msk('2026-11-24T10:00:00');

  it('counts quota and fares of the current month and day across devices, and keeps only marks inside their windows', () => {
    const u = fleetUsage(rows, transit, tariff, o, now);
    expect(u.map((x) => x.token)).toEqual([A, P]); // Q rode last month only
    const a = u.find((x) => x.token === A)!;
    expect(a.counters).toEqual({ 'fare@2026-11-24': 7000 });
    expect(a.marks.lastPaid).toMatchObject({ route: '2', effMs: msk('2026-11-24T09:40:00'), transfers: 0 }); // 07:00 on route 1 is 2h40 ago: no transfer
    expect(a.marks.lastRide).toBeUndefined(); // 20 min ago: outside the 7-minute repeat window
    const p = u.find((x) => x.token === P)!;
    expect(p.counters).toEqual({ 'quota:pensioner@2026-11': 2, 'fare@2026-11-24': 1750 });
  });

  it('is the same whatever the order of the rows', () => {
    expect(fleetUsage([...rows].reverse(), transit, tariff, o, now)).toEqual(fleetUsage(rows, transit, tariff, o, now));
  });

  it('a card with nothing current is left out', () => {
    expect(fleetUsage(rows, transit, tariff, o, msk('2026-12-02T10:00:00'))).toEqual([]);
  });
});
