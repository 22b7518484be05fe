import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../device/config/schema.js';
import type { Tap } from '../../protocol/rules/types.js';
import { Sim, T, fixtureConfig, mkTap, msk } from './rules-sim.js';

// Random tap sequences: wall clock jumps forward and BACK, monotonic clock
// forward only within a boot, reboots reset it; several cards, routes, vehicles.
const step = fc.record({
  token: fc.constantFrom(T.pensioner, T.pensionerDisabled, T.schoolchild, T.unknown, T.stopped, T.expiredOct, 'abababababababababababababababab'),
  dtMs: fc.integer({ min: -6 * 3600_000, max: 30 * 3600_000 }),
  monoDt: fc.integer({ min: 0, max: 4 * 3600_000 }),
  reboot: fc.integer({ min: 0, max: 9 }).map((n) => n === 0), // one tap in ten after a reboot
  route: fc.constantFrom('7', '12'),
  vehicle: fc.constantFrom('A', 'B'),
});
const steps = fc.array(step, { minLength: 1, maxLength: 60 });

function busCfg(): Config {
  const cfg = fixtureConfig('bus');
  cfg.tariff!.benefits.pensioner = { kind: 'free', quota: { trips: 3, per: 'month', onExhausted: 'full-fare' } };
  return cfg;
}

type Steps = typeof steps extends fc.Arbitrary<infer U> ? U : never;
function taps(ss: Steps): Tap[] {
  let wall = msk('2026-11-29 08:00');
  let mono = 1000;
  let boot = 1;
  return ss.map((s) => {
    wall += s.dtMs;
    if (s.reboot) {
      boot++;
      mono = 0;
    }
    mono += s.monoDt;
    return mkTap(wall, s.token, { mono, boot: `boot-${boot}`, route: s.route, vehicle: s.vehicle });
  });
}

function newSim(cfg: Config): Sim {
  const sim = new Sim(cfg);
  sim.transit.set('abababababababababababababababab', {
    token: 'abababababababababababababababab',
    cardExpiry: '2030-01',
    benefits: [{ category: 'student', validFrom: '2020-01-01', validTo: '2030-01-01' }],
  });
  return sim;
}

describe('decision properties', () => {
  it('the same taps from the same state give the same decisions', () => {
    fc.assert(
      fc.property(steps, (ss) => {
        const cfg = busCfg();
        const s1 = newSim(cfg);
        const s2 = newSim(cfg);
        const d1 = taps(ss).map((t) => s1.run(t));
        const d2 = taps(ss).map((t) => s2.run(t));
        expect(d2).toEqual(d1);
      }),
      { numRuns: 150 },
    );
  });

  it('no tap sequence uses more quota than the tariff gives (remaining never negative), even with the clock set back', () => {
    fc.assert(
      fc.property(steps, (ss) => {
        const cfg = busCfg();
        const sim = newSim(cfg);
        for (const t of taps(ss)) {
          sim.run(t);
          for (const [, c] of sim.counters) {
            for (const [k, v] of Object.entries(c)) {
              if (!k.startsWith('quota:')) continue;
              const cat = k.slice(6, k.indexOf('@')) as 'pensioner' | 'student';
              const q = cfg.tariff!.benefits[cat]!.quota!;
              expect(q.trips - v).toBeGreaterThanOrEqual(0);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('no tap sequence charges one card above the daily cap in a local day, and no fare is negative', () => {
    fc.assert(
      fc.property(steps, (ss) => {
        const cfg = busCfg();
        const cap = cfg.tariff!.dailyCapKopecks!;
        const sim = newSim(cfg);
        const charged = new Map<string, number>();
        for (const t of taps(ss)) {
          const d = sim.run(t);
          expect(d.fareKopecks).toBeGreaterThanOrEqual(0);
          const dayKey = `${t.card.token}@${new Date(d.effectiveTime + 3 * 3600_000).toISOString().slice(0, 10)}`;
          charged.set(dayKey, (charged.get(dayKey) ?? 0) + d.fareKopecks);
          expect(charged.get(dayKey)!).toBeLessThanOrEqual(cap);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('the effective time never goes backwards for a card', () => {
    fc.assert(
      fc.property(steps, (ss) => {
        const sim = newSim(busCfg());
        const last = new Map<string, number>();
        for (const t of taps(ss)) {
          const d = sim.run(t);
          expect(d.effectiveTime).toBeGreaterThanOrEqual(last.get(t.card.token) ?? -Infinity);
          last.set(t.card.token, d.effectiveTime);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('turnstile: with hard anti-passback, allowed passages of a card alternate within a local day', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            dir: fc.constantFrom('entry' as const, 'exit' as const),
            dtMs: fc.integer({ min: -3600_000, max: 3 * 3600_000 }),
            monoDt: fc.integer({ min: 0, max: 3600_000 }),
          }),
          { maxLength: 40 },
        ),
        (ss) => {
          const sim = new Sim(fixtureConfig('turnstile'));
          let wall = msk('2026-11-24 07:40');
          let mono = 0;
          let prev: { dir: string; day: string } | null = null;
          for (const s of ss) {
            wall += s.dtMs;
            mono += s.monoDt;
            const d = sim.run(mkTap(wall, T.staff, { dir: s.dir, mono }));
            if (d.result === 'allow') {
              const day = new Date(d.effectiveTime + 3 * 3600_000).toISOString().slice(0, 10);
              if (prev && prev.day === day) expect(s.dir).not.toBe(prev.dir);
              prev = { dir: s.dir, day };
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
