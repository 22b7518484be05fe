import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTLEMENT as opts, serviceDay } from '../../sync-server/settlement/days.js';
import { noonClock } from '../e2e/fleet-rig.js';

/**
 * The fleet e2e's processes run on noonClock: whenever the test starts, their clock starts at noon (Moscow) of
 * that service day, so the test's taps (ten minutes at most) never straddle Moscow's midnight (21:00 UTC).
 */
describe("the fleet e2e clock (the server's default service days: Moscow, ending at midnight)", () => {
  for (const start of ['2026-12-02T20:58:00Z', '2026-12-02T21:01:00Z', '2026-12-31T20:59:30Z', '2026-12-02T03:34:00Z']) {
    it(`started at ${start}: the whole run falls on one service day, the one of its start`, () => {
      const now = Date.parse(start);
      const { offsetMs, serviceDay: day } = noonClock(now);
      expect(day).toBe(serviceDay(now, opts));
      expect(new Date(now + offsetMs).toISOString()).toBe(`${day}T09:00:00.000Z`);
      expect(serviceDay(now + offsetMs + 20 * 60_000, opts)).toBe(day); // twenty minutes later: the same day
    });
  }
});
