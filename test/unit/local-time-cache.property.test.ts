import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { localTime, localTimeUncached } from '../../protocol/rules/time.js';

// 1970..2100, plus instants packed around DST changes in Berlin (last Sunday of March / October, 01:00 UTC)
const anyInstant = fc.integer({ min: 0, max: Date.UTC(2100, 0, 1) });
const nearDst = fc
  .record({ year: fc.integer({ min: 1981, max: 2090 }), oct: fc.boolean(), offsetMs: fc.integer({ min: -7_200_000, max: 7_200_000 }) })
  .map(({ year, oct, offsetMs }) => {
    const month = oct ? 9 : 2;
    const last = new Date(Date.UTC(year, month + 1, 0));
    const sunday = last.getUTCDate() - last.getUTCDay();
    return Date.UTC(year, month, sunday, 1) + offsetMs;
  });
const zones = ['Europe/Moscow', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe'];

describe('localTime cache', () => {
  it('gives the same local date, month, time and weekday as Intl, at any instant and in DST-free and DST zones', () => {
    fc.assert(
      fc.property(fc.oneof(anyInstant, nearDst), fc.constantFrom(...zones), (ms, tz) => {
        expect(localTime(ms, tz)).toEqual(localTimeUncached(ms, tz));
        // a second call is served from the cache and still agrees
        expect(localTime(ms, tz)).toEqual(localTimeUncached(ms, tz));
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees minute by minute across the autumn change in Berlin, when a local hour repeats', () => {
    const start = Date.UTC(2026, 9, 25, 0, 0);
    for (let ms = start; ms < start + 3 * 3_600_000; ms += 17_000) expect(localTime(ms, 'Europe/Berlin')).toEqual(localTimeUncached(ms, 'Europe/Berlin'));
    expect(localTime(Date.UTC(2026, 9, 25, 0, 30), 'Europe/Berlin').hm).toBe('02:30');
    expect(localTime(Date.UTC(2026, 9, 25, 1, 30), 'Europe/Berlin').hm).toBe('02:30');
  });

  it('converts exactly in a zone whose old offset was not whole minutes (Moscow 1900, LMT +2:30:17)', () => {
    for (let ms = Date.UTC(1900, 5, 1, 12, 0); ms < Date.UTC(1900, 5, 1, 12, 3); ms += 1_000)
      expect(localTime(ms, 'Europe/Moscow')).toEqual(localTimeUncached(ms, 'Europe/Moscow'));
  });
});
