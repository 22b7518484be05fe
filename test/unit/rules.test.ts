import { describe, expect, it } from 'vitest';
import type { Config } from '../../device/config/schema.js';
import type { DeviceKind } from '../../protocol/ids.js';
import type { SchoolEntry } from '../../protocol/lists.js';
import { localTime } from '../../protocol/rules/time.js';
import { Sim, T, brief, fixtureConfig, mkTap, msk, type TapOpts } from './rules-sim.js';

type Step = [when: number, token: string, opts: TapOpts, expected: string];
interface Case {
  name: string;
  cfg: DeviceKind;
  patch?: (c: Config) => void;
  setup?: (s: Sim) => void;
  steps: Step[];
}

const MIN = 60_000;

/** Put a student of this grade and meal category into school 7's list of the simulator. */
function enrol(s: Sim, token: string, grade: number, mealCategory: SchoolEntry['mealCategory']): void {
  const scope = 'school:7';
  const m = s.schools.get(scope) ?? new Map<string, SchoolEntry>();
  m.set(token, { token, cardExpiry: '2030-01', role: 'student', grade, mealCategory, validFrom: '2026-09-01', validTo: '2027-05-31' });
  s.schools.set(scope, m);
}
const day = msk('2026-11-24 08:00'); // a Tuesday
const O: TapOpts = {};

const bus: Case[] = [
  { name: 'a pensioner with a valid entitlement rides free', cfg: 'bus', steps: [[day, T.pensioner, O, 'allow benefit 0']] },
  { name: 'an unknown card pays the full fare of the route', cfg: 'bus', steps: [[day, T.unknown, O, 'allow full-fare 3500']] },
  { name: 'the route of the tap sets the full fare', cfg: 'bus', steps: [[day, T.unknown, { route: '12' }, 'allow full-fare 4000']] },
  { name: 'a route missing from the tariff is refused', cfg: 'bus', steps: [[day, T.unknown, { route: '99' }, 'deny unknown-route 0']] },
  { name: 'stop-list wins over a benefit', cfg: 'bus', steps: [[day, T.stopped, O, 'deny stop-list 0']] },
  { name: 'percent off: half fare for a schoolchild', cfg: 'bus', steps: [[day, T.schoolchild, O, 'allow benefit 1750']] },
  {
    name: 'several entitlements: the free unlimited one is taken, no quota used',
    cfg: 'bus',
    steps: [[day, T.pensionerDisabled, O, 'allow benefit 0']],
  },
  {
    name: 'several entitlements: the cheapest fare wins (fixed 15 ₽ beats 50 %)',
    cfg: 'bus',
    setup: (s) =>
      s.transit.set(T.unknown, {
        token: T.unknown,
        cardExpiry: '2030-01',
        benefits: [
          { category: 'schoolchild', validFrom: '2026-01-01', validTo: '2027-01-01' },
          { category: 'student', validFrom: '2026-01-01', validTo: '2027-01-01' },
        ],
      }),
    steps: [[day, T.unknown, O, 'allow benefit 1500']],
  },
  {
    name: 'a benefit outside its validity dates gives the full fare (validTo inclusive, local date)',
    cfg: 'bus',
    setup: (s) =>
      s.transit.set(T.unknown, {
        token: T.unknown,
        cardExpiry: '2030-01',
        benefits: [{ category: 'disabled', validFrom: '2026-11-01', validTo: '2026-11-24' }],
      }),
    steps: [
      [msk('2026-11-24 23:50'), T.unknown, O, 'allow benefit 0'],
      [msk('2026-11-25 00:00'), T.unknown, O, 'allow full-fare 3500'],
    ],
  },
  {
    name: 'a category the tariff does not list gives no benefit',
    cfg: 'bus',
    setup: (s) =>
      s.transit.set(T.unknown, {
        token: T.unknown,
        cardExpiry: '2030-01',
        benefits: [{ category: 'veteran', validFrom: '2020-01-01', validTo: '2030-01-01' }],
      }),
    steps: [[day, T.unknown, O, 'allow full-fare 3500']],
  },
  {
    name: 'card expiry: valid to the last minute of its month, refused from local midnight (UTC still in October)',
    cfg: 'bus',
    steps: [
      [msk('2026-10-31 23:59'), T.expiredOct, O, 'allow full-fare 3500'],
      [Date.parse('2026-10-31T21:00:00Z'), T.expiredOct, { vehicle: 'other' }, 'deny card-expired 0'],
    ],
  },
  {
    name: 'the expiry read from the card is used when given',
    cfg: 'bus',
    steps: [
      [day, T.pensioner, { expiry: '2026-10' }, 'deny card-expired 0'],
      [day + 10 * MIN, T.unknown, { expiry: '2026-11' }, 'allow full-fare 3500'],
    ],
  },
  {
    name: 'repeat tap: inside the window (419 s) free, at 420 s charged again',
    cfg: 'bus',
    steps: [
      [day, T.unknown, O, 'allow full-fare 3500'],
      [day + 419_000, T.unknown, O, 'allow repeat-tap 0'],
      [day + 420_000, T.unknown, O, 'allow full-fare 3500'],
    ],
  },
  {
    name: 'repeat tap on another vehicle of the same route is a new ride',
    cfg: 'bus',
    steps: [
      [day, T.unknown, O, 'allow full-fare 3500'],
      [day + MIN, T.unknown, { vehicle: 'B777' }, 'allow full-fare 3500'],
    ],
  },
  {
    name: 'a repeat tap uses no quota',
    cfg: 'bus',
    patch: (c) => (c.tariff!.benefits.pensioner = { kind: 'free', quota: { trips: 1, per: 'month', onExhausted: 'full-fare' } }),
    steps: [
      [day, T.pensioner, O, 'allow benefit 0'],
      [day + MIN, T.pensioner, O, 'allow repeat-tap 0'],
      [day + 8 * MIN, T.pensioner, O, 'allow quota-exhausted 3500'],
    ],
  },
  {
    name: 'monthly quota: used up → full fare; resets at LOCAL midnight of the 1st (21:00 UTC)',
    cfg: 'bus',
    setup: (s) => s.setCounter(T.pensioner, 'quota:pensioner@2026-11', 40),
    steps: [
      [Date.parse('2026-11-30T20:59:00Z'), T.pensioner, O, 'allow quota-exhausted 3500'],
      [Date.parse('2026-11-30T21:00:00Z'), T.pensioner, { vehicle: 'X1' }, 'allow benefit 0'],
    ],
  },
  {
    name: 'daily quota with onExhausted deny: third trip refused, next local day allowed',
    cfg: 'bus',
    setup: (s) =>
      s.transit.set(T.unknown, {
        token: T.unknown,
        cardExpiry: '2030-01',
        benefits: [{ category: 'student', validFrom: '2026-01-01', validTo: '2027-01-01' }],
      }),
    steps: [
      [day, T.unknown, O, 'allow benefit 1500'],
      [day + 10 * MIN, T.unknown, O, 'allow benefit 1500'],
      [day + 20 * MIN, T.unknown, O, 'deny quota-exhausted 0'],
      [msk('2026-11-25 00:00'), T.unknown, O, 'allow benefit 1500'],
    ],
  },
  {
    name: 'transfer: another route inside the window after a paid tap pays the transfer fare, up to the maximum',
    cfg: 'bus',
    steps: [
      [day, T.unknown, O, 'allow full-fare 3500'],
      [day + 30 * MIN, T.unknown, { route: '12', vehicle: 'B1' }, 'allow transfer 0'],
      [day + 40 * MIN, T.unknown, { vehicle: 'A9' }, 'allow full-fare 3500'],
    ],
  },
  {
    name: 'transfer window boundary: at 3600 s it is a new paid ride',
    cfg: 'bus',
    steps: [
      [day, T.unknown, O, 'allow full-fare 3500'],
      [day + 3_599_999, T.unknown, { route: '12', vehicle: 'B1' }, 'allow transfer 0'],
      [day + 3_600_000, T.unknown, { route: '7', vehicle: 'B2' }, 'allow full-fare 3500'],
    ],
  },
  {
    name: 'no transfer on the same route, nor after a free ride',
    cfg: 'bus',
    steps: [
      [day, T.unknown, O, 'allow full-fare 3500'],
      [day + 10 * MIN, T.unknown, { vehicle: 'A2' }, 'allow full-fare 3500'],
      [day, T.pensioner, O, 'allow benefit 0'],
      [day + 10 * MIN, T.pensioner, { route: '12', vehicle: 'B1' }, 'allow benefit 0'],
    ],
  },
  {
    name: 'daily cap: fares in one local day never exceed 100 ₽; the excess is cut, then free',
    cfg: 'bus',
    patch: (c) => delete c.tariff!.transfer,
    steps: [
      [day, T.unknown, O, 'allow full-fare 3500'],
      [day + 10 * MIN, T.unknown, O, 'allow full-fare 3500'],
      [day + 20 * MIN, T.unknown, O, 'allow capped 3000'],
      [day + 30 * MIN, T.unknown, O, 'allow capped 0'],
      [msk('2026-11-25 00:01'), T.unknown, O, 'allow full-fare 3500'],
    ],
  },
  {
    name: 'clock set back (same boot): last month’s quota does not come back',
    cfg: 'bus',
    setup: (s) => {
      s.setCounter(T.pensioner, 'quota:pensioner@2026-12', 40);
      s.setCounter(T.pensioner, 'quota:pensioner@2026-11', 3);
    },
    steps: [
      [msk('2026-12-01 09:00'), T.pensioner, { mono: 1_000_000 }, 'allow quota-exhausted 3500'],
      [msk('2026-11-30 09:00'), T.pensioner, { mono: 1_000_000 + 10 * MIN, vehicle: 'Z' }, 'allow quota-exhausted 3500'],
    ],
  },
  {
    name: 'clock set back across a reboot: the month stays the last one seen',
    cfg: 'bus',
    setup: (s) => s.setCounter(T.pensioner, 'quota:pensioner@2026-12', 40),
    steps: [
      [msk('2026-12-01 09:00'), T.pensioner, { mono: 5_000_000, boot: 'boot-1' }, 'allow quota-exhausted 3500'],
      [msk('2026-11-20 09:00'), T.pensioner, { mono: 1_000, boot: 'boot-2', vehicle: 'Z' }, 'allow quota-exhausted 3500'],
    ],
  },
  {
    name: 'clock set back: the repeat window runs on the monotonic clock',
    cfg: 'bus',
    steps: [
      [day, T.unknown, { mono: 0 }, 'allow full-fare 3500'],
      [day - 60 * MIN, T.unknown, { mono: MIN }, 'allow repeat-tap 0'],
      [day - 52 * MIN, T.unknown, { mono: 8 * MIN }, 'allow full-fare 3500'],
    ],
  },
  {
    name: 'clock set back does not reopen the daily cap',
    cfg: 'bus',
    patch: (c) => delete c.tariff!.transfer,
    steps: [
      [msk('2026-11-25 08:00'), T.unknown, { mono: 0 }, 'allow full-fare 3500'],
      [msk('2026-11-25 08:10'), T.unknown, { mono: 10 * MIN }, 'allow full-fare 3500'],
      [msk('2026-11-25 08:20'), T.unknown, { mono: 20 * MIN }, 'allow capped 3000'],
      [msk('2026-11-24 08:30'), T.unknown, { mono: 30 * MIN }, 'allow capped 0'],
    ],
  },
];

const school: Case[] = [
  { name: 'an enrolled student enters inside the schedule', cfg: 'turnstile', steps: [[day, T.student2, { dir: 'entry' }, 'allow ok 0']] },
  { name: 'a card not in the school list is refused', cfg: 'turnstile', steps: [[day, T.unknown, { dir: 'entry' }, 'deny not-enrolled 0']] },
  { name: 'enrolment dates: after validTo refused', cfg: 'turnstile', steps: [[msk('2027-06-01 08:00'), T.student2, { dir: 'entry' }, 'deny not-enrolled 0']] },
  {
    name: 'schedule window edges: 07:29 refused, 07:30 allowed, 15:00 refused (end exclusive)',
    cfg: 'turnstile',
    patch: (c) => (c.school!.antiPassback = 'off'),
    steps: [
      [msk('2026-11-24 07:29'), T.student2, { dir: 'entry' }, 'deny outside-hours 0'],
      [msk('2026-11-24 07:30'), T.student2, { dir: 'entry' }, 'allow ok 0'],
      [msk('2026-11-24 14:59'), T.student2, { dir: 'entry' }, 'allow ok 0'],
      [msk('2026-11-24 15:00'), T.student2, { dir: 'entry' }, 'deny outside-hours 0'],
    ],
  },
  {
    name: 'weekday schedule: Sunday refused, Saturday has its own window',
    cfg: 'turnstile',
    steps: [
      [msk('2026-11-28 12:59'), T.student2, { dir: 'entry' }, 'allow ok 0'],
      [msk('2026-11-28 13:00'), T.student2, { dir: 'entry' }, 'deny outside-hours 0'],
      [msk('2026-11-29 09:00'), T.student2, { dir: 'entry' }, 'deny outside-hours 0'],
    ],
  },
  {
    name: 'staff have their own schedule (evening entry allowed)',
    cfg: 'turnstile',
    steps: [
      [msk('2026-11-24 18:30'), T.staff, { dir: 'entry' }, 'allow ok 0'],
      [msk('2026-11-24 18:30'), T.student7, { dir: 'entry' }, 'deny outside-hours 0'],
    ],
  },
  {
    name: 'holidays close the school; staff only with staffOnHolidays',
    cfg: 'turnstile',
    steps: [
      [msk('2026-11-04 09:00'), T.student2, { dir: 'entry' }, 'deny outside-hours 0'],
      [msk('2026-11-04 09:00'), T.staff, { dir: 'entry' }, 'deny outside-hours 0'],
    ],
  },
  {
    name: 'holidays with staffOnHolidays: staff may enter',
    cfg: 'turnstile',
    patch: (c) => (c.school!.staffOnHolidays = true),
    steps: [[msk('2026-11-04 09:00'), T.staff, { dir: 'entry' }, 'allow ok 0']],
  },
  {
    name: 'exit is always allowed, even after hours',
    cfg: 'turnstile',
    steps: [[msk('2026-11-24 21:00'), T.student2, { dir: 'exit' }, 'allow ok 0']],
  },
  {
    name: 'anti-passback hard: a second entry without an exit is refused; exit then entry is fine',
    cfg: 'turnstile',
    steps: [
      [day, T.student2, { dir: 'entry' }, 'allow ok 0'],
      [day + MIN, T.student2, { dir: 'entry' }, 'deny anti-passback 0'],
      [day + 2 * MIN, T.student2, { dir: 'exit' }, 'allow ok 0'],
      [day + 3 * MIN, T.student2, { dir: 'exit' }, 'deny anti-passback 0'],
      [day + 4 * MIN, T.student2, { dir: 'entry' }, 'allow ok 0'],
    ],
  },
  {
    name: 'anti-passback resets with the local day',
    cfg: 'turnstile',
    steps: [
      [day, T.student2, { dir: 'entry' }, 'allow ok 0'],
      [msk('2026-11-25 08:00'), T.student2, { dir: 'entry' }, 'allow ok 0'],
    ],
  },
  {
    name: 'anti-passback soft: allowed and flagged',
    cfg: 'turnstile',
    patch: (c) => (c.school!.antiPassback = 'soft'),
    steps: [
      [day, T.student2, { dir: 'entry' }, 'allow ok 0'],
      [day + MIN, T.student2, { dir: 'entry' }, 'allow anti-passback 0'],
    ],
  },
  {
    name: 'clock set back to yesterday does not lift anti-passback',
    cfg: 'turnstile',
    steps: [
      [day, T.student2, { dir: 'entry', mono: 0 }, 'allow ok 0'],
      [day - 24 * 60 * MIN + 5 * MIN, T.student2, { dir: 'entry', mono: 5 * MIN }, 'deny anti-passback 0'],
      [day - 24 * 60 * MIN + 6 * MIN, T.student2, { dir: 'entry', mono: 0, boot: 'boot-2' }, 'deny anti-passback 0'],
    ],
  },
  {
    name: 'free passage opens for everyone, still decided and journaled',
    cfg: 'turnstile',
    patch: (c) => (c.school!.freePassage = true),
    steps: [
      [msk('2026-11-29 03:00'), T.unknown, { dir: 'exit' }, 'allow free-passage 0'],
      [day, T.student2, { dir: 'entry' }, 'allow free-passage 0'],
    ],
  },
  {
    name: 'a lost card is refused at the gate; a failed bus charge is not',
    cfg: 'turnstile',
    setup: (s) => {
      s.stop.set(T.student2, { token: T.student2, reason: 'lost', since: '2026-11-01' });
      s.stop.set(T.student7, { token: T.student7, reason: 'charge-declined', since: '2026-11-01' });
    },
    steps: [
      [day, T.student2, { dir: 'entry' }, 'deny stop-list 0'],
      [day, T.student7, { dir: 'entry' }, 'allow ok 0'],
    ],
  },
  { name: 'an expired card is refused at the gate', cfg: 'turnstile', steps: [[day, T.student2, { dir: 'entry', expiry: '2026-10' }, 'deny card-expired 0']] },
];

const canteen: Case[] = [
  {
    name: 'free breakfast once a day; the second is refused when breakfast has no price',
    cfg: 'canteen',
    steps: [
      [msk('2026-11-24 08:40'), T.student2, O, 'allow benefit 0'],
      [msk('2026-11-24 08:41'), T.student2, O, 'deny meal-already-taken 0'],
      [msk('2026-11-25 08:40'), T.student2, O, 'allow benefit 0'],
    ],
  },
  {
    name: 'free lunch once; a second lunch is a paid meal when lunch has a price',
    cfg: 'canteen',
    steps: [
      [msk('2026-11-24 12:00'), T.student7, O, 'allow benefit 0'],
      [msk('2026-11-24 12:05'), T.student7, O, 'allow paid-meal 12000'],
    ],
  },
  {
    name: 'no entitlement: paid if priced, else refused',
    cfg: 'canteen',
    steps: [
      [msk('2026-11-24 09:00'), T.student7, O, 'deny not-entitled 0'],
      [msk('2026-11-24 12:00'), T.staff, O, 'allow paid-meal 12000'],
    ],
  },
  {
    name: 'meal windows: 10:30 is after breakfast, 11:30 is lunch; holiday closed',
    cfg: 'canteen',
    steps: [
      [msk('2026-11-24 10:30'), T.student2, O, 'deny outside-hours 0'],
      [msk('2026-11-24 11:30'), T.student7, O, 'allow benefit 0'],
      [msk('2026-11-04 12:00'), T.staff, O, 'deny outside-hours 0'],
    ],
  },
  { name: 'not enrolled: refused', cfg: 'canteen', steps: [[msk('2026-11-24 12:00'), T.unknown, O, 'deny not-enrolled 0']] },
  {
    name: 'an ОВЗ child eats breakfast and lunch free, once each a day',
    cfg: 'canteen',
    patch: (c) => {
      c.canteen!.categories.ovz = ['breakfast', 'lunch'];
    },
    setup: (s) => enrol(s, T.unknown, 3, 'ovz'),
    steps: [
      [msk('2026-11-24 08:40'), T.unknown, O, 'allow benefit 0'],
      [msk('2026-11-24 12:00'), T.unknown, O, 'allow benefit 0'],
      [msk('2026-11-24 12:10'), T.unknown, O, 'allow paid-meal 12000'],
    ],
  },
  {
    name: 'grades 1–4 by rule: one free hot meal a day whatever the meal category; the other meal is paid',
    cfg: 'canteen',
    patch: (c) => {
      c.canteen!.grades = [{ from: 1, to: 4, meals: ['breakfast', 'lunch'], perDay: 1 }];
    },
    setup: (s) => enrol(s, T.unknown, 3, null),
    steps: [
      [msk('2026-11-24 08:40'), T.unknown, O, 'allow benefit 0'],
      [msk('2026-11-24 12:00'), T.unknown, O, 'allow paid-meal 12000'],
      [msk('2026-11-25 12:00'), T.unknown, O, 'allow benefit 0'],
    ],
  },
  {
    name: 'a grade rule does not cover grade 5 nor staff',
    cfg: 'canteen',
    patch: (c) => {
      c.canteen!.grades = [{ from: 1, to: 4, meals: ['breakfast'] }];
    },
    setup: (s) => enrol(s, T.unknown, 5, null),
    steps: [
      [msk('2026-11-24 08:40'), T.unknown, O, 'deny not-entitled 0'],
      [msk('2026-11-24 08:41'), T.staff, O, 'deny not-entitled 0'],
    ],
  },
  {
    name: "second free meal of a kind: sold when the school's rule is sell, refused when it is refuse",
    cfg: 'canteen',
    patch: (c) => {
      c.canteen!.paidPriceKopecks = { breakfast: 8000, lunch: 12000 };
      c.canteen!.secondFreeMeal = 'refuse';
    },
    steps: [
      [msk('2026-11-24 08:40'), T.student2, O, 'allow benefit 0'],
      [msk('2026-11-24 08:45'), T.student2, O, 'deny meal-already-taken 0'],
      [msk('2026-11-24 08:50'), T.staff, O, 'allow paid-meal 8000'],
      [msk('2026-11-24 12:00'), T.student2, O, 'allow paid-meal 12000'],
    ],
  },
  {
    name: 'clock set back to yesterday does not give a second free meal',
    cfg: 'canteen',
    steps: [
      [msk('2026-11-24 08:40'), T.student2, { mono: 0 }, 'allow benefit 0'],
      [msk('2026-11-23 08:41'), T.student2, { mono: MIN }, 'deny meal-already-taken 0'],
    ],
  },
];

const partner: Case[] = [
  { name: 'a resident without a benefit gets the category discount', cfg: 'partner', steps: [[day, T.schoolchild, O, 'allow resident 0']] },
  { name: 'a pensioner gets the higher discount of the benefit', cfg: 'partner', steps: [[day, T.pensioner, O, 'allow resident 0']] },
  { name: 'a card that is not connected is not a resident card', cfg: 'partner', steps: [[day, T.unknown, O, 'deny not-resident 0']] },
  { name: 'an expired card is not a resident card', cfg: 'partner', steps: [[msk('2026-11-24 10:00'), T.expiredOct, O, 'deny card-expired 0']] },
  { name: 'a failed bus charge does not stop the resident check', cfg: 'partner', steps: [[day, T.stopped, O, 'allow resident 0']] },
];

describe.each([
  ['bus validator', bus],
  ['school turnstile', school],
  ['canteen terminal', canteen],
  ['partner resident check', partner],
] as const)('%s rules', (_n, cases) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const cfg = fixtureConfig(c.cfg);
    c.patch?.(cfg);
    const sim = new Sim(cfg);
    c.setup?.(sim);
    const got = c.steps.map(([when, token, o]) => brief(sim.run(mkTap(when, token, o))));
    expect(got).toEqual(c.steps.map((s) => s[3]));
  });
});

describe('decision details', () => {
  it('partner: the discount is shown and journaled (flag), the best benefit named; a stranger sees «Не карта жителя»', () => {
    const sim = new Sim(fixtureConfig('partner'));
    const both = sim.run(mkTap(day, T.pensionerDisabled));
    expect(both).toMatchObject({ result: 'allow', reason: 'resident', benefit: 'disabled', discountPercent: 100, fareKopecks: 0 });
    expect(both.display.ru).toBe('Карта жителя: скидка 100%');
    expect(both.flags).toEqual(['partner:museum-1', 'discount:100']);
    const plain = sim.run(mkTap(day, T.schoolchild));
    expect([plain.benefit, plain.discountPercent, plain.display.ru]).toEqual([null, 10, 'Карта жителя: скидка 10%']);
    expect(sim.run(mkTap(day, T.unknown)).display).toEqual({ ru: 'Не карта жителя', en: 'Not a resident card' });
    expect(sim.run(mkTap(msk('2026-11-24 10:00'), T.expiredOct)).display.ru).toBe('Не карта жителя');
  });

  it('an unknown card at full fare is flagged for deferred charging', () => {
    const d = new Sim(fixtureConfig('bus')).run(mkTap(day, T.unknown));
    expect(d.flags).toEqual(expect.arrayContaining(['unknown-card', 'deferred-charge']));
    expect(d.benefit).toBeNull();
    expect(d.display.ru).toBe('Оплата 35,00 ₽');
    expect(d.display.en).toBe('Fare 35.00 RUB');
  });
  it('a benefit with a quota records one trip in the month of local time', () => {
    const d = new Sim(fixtureConfig('bus')).run(mkTap(Date.parse('2026-11-30T21:30:00Z'), T.pensioner));
    expect(d.benefit).toBe('pensioner');
    expect(d.counterDelta.add).toEqual([{ name: 'quota:pensioner', period: '2026-12', by: 1 }]);
  });
  it('the best entitlement without quota is preferred at equal fare', () => {
    const d = new Sim(fixtureConfig('bus')).run(mkTap(day, T.pensionerDisabled));
    expect(d.benefit).toBe('disabled');
    expect(d.counterDelta.add).toEqual([]);
  });
  it('a clock set back is flagged, and the calendar uses the guarded time', () => {
    const sim = new Sim(fixtureConfig('bus'));
    sim.run(mkTap(msk('2026-12-01 09:00'), T.unknown, { mono: 0 }));
    const d = sim.run(mkTap(msk('2026-11-30 09:00'), T.unknown, { mono: 10 * MIN }));
    expect(d.flags).toContain('clock-behind');
    expect(new Date(d.effectiveTime).toISOString()).toBe('2026-12-01T06:10:00.000Z');
  });
  it('soft anti-passback is flagged for the server', () => {
    const cfg = fixtureConfig('turnstile');
    cfg.school!.antiPassback = 'soft';
    const sim = new Sim(cfg);
    sim.run(mkTap(day, T.student2, { dir: 'entry' }));
    expect(sim.run(mkTap(day + MIN, T.student2, { dir: 'entry' })).flags).toContain('anti-passback-soft');
  });
  it('a denied tap changes no counter', () => {
    const sim = new Sim(fixtureConfig('bus'));
    expect(sim.run(mkTap(day, T.stopped)).counterDelta.add).toEqual([]);
  });
  it('local time follows the configured zone (Europe/Moscow is UTC+3)', () => {
    expect(localTime(Date.parse('2026-12-31T21:00:00Z'), 'Europe/Moscow')).toEqual({ date: '2027-01-01', month: '2027-01', hm: '00:00', weekday: 'fri' });
    expect(localTime(Date.parse('2026-12-31T21:00:00Z'), 'UTC').date).toBe('2026-12-31');
  });
});
