import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import type { ReportDoc, Section } from '../../protocol/reports.js';
import { build as attendance } from '../../sync-server/reports/attendance.js';
import { build as meals } from '../../sync-server/reports/meals.js';
import { expectRcError } from '../support/errors.js';
import { syntheticPan } from '../support/pans.js';
import { SCHOOL_RULES, schoolRegistry, uploadSchool, type SchoolRegistry, type SchoolTap } from '../support/school-journal.js';

/**
 * The school reports over a real registry: roster and cards imported, rules
 * published (students Mon–Fri 08:00–14:00, 4 Nov a holiday; breakfast 60 ₽,
 * lunch 95 ₽), entries uploaded through the real ingest. Every number below
 * is worked out by hand in the comments.
 *
 * November 2026: 1 Nov is a Sunday; weekdays 2–6, 9–13, 16–20, 23–27, 30 = 21,
 * less the 4 Nov holiday = 20 school days.
 */
const ROSTER = [
  'p0,S1,student,1,free-breakfast,2026-09-01,2027-05-31',
  'p1,S1,student,1,,2026-09-01,2027-05-31',
  'p2,S1,student,5,free-lunch,2026-11-16,2027-05-31', // joins on Mon 16 Nov: 16–20, 23–27, 30 = 11 school days
  'p3,S1,staff,,,2026-09-01,2027-05-31',
  'p4,S2,student,3,,2026-09-01,2027-05-31', // another school
];
const gate = (card: number, at: string, direction: 'entry' | 'exit', extra: Partial<SchoolTap> = {}): SchoolTap => ({
  device: 'gate-1',
  school: 'S1',
  kind: 'turnstile',
  card,
  at,
  direction,
  ...extra,
});
const TURNSTILE: SchoolTap[] = [
  // p0: Mon 2 on time, whole day; Tue 3 late (08:15) and left early (13:30); Thu 5 two entries, the first counts
  gate(0, '2026-11-02T07:50', 'entry'),
  gate(0, '2026-11-02T14:10', 'exit'),
  gate(0, '2026-11-03T08:15', 'entry'),
  gate(0, '2026-11-03T13:30', 'exit'),
  gate(0, '2026-11-05T07:55', 'entry'),
  gate(0, '2026-11-05T10:00', 'exit'),
  gate(0, '2026-11-05T10:20', 'entry'),
  gate(0, '2026-11-05T14:05', 'exit'),
  // p1: Mon 2 (no exit recorded), Sat 7 (not a school day: present, never late); refused on Tue 3: not present
  gate(1, '2026-11-02T07:40', 'entry'),
  gate(1, '2026-11-03T07:45', 'entry', { result: 'deny', reason: 'anti-passback' }),
  gate(1, '2026-11-07T10:00', 'entry'),
  // p2: Mon 16 late (08:30), leaves at 14:00 sharp (not early)
  gate(2, '2026-11-16T08:30', 'entry'),
  gate(2, '2026-11-16T14:00', 'exit'),
  // staff are not in the attendance report
  gate(3, '2026-11-02T07:10', 'entry'),
  // p0 at another school's gate: not this school's
  { device: 'gate-9', school: 'S2', kind: 'turnstile', card: 0, at: '2026-11-06T08:00', direction: 'entry' },
];
const meal = (card: number, at: string, m: string, extra: Partial<SchoolTap>): SchoolTap => ({
  device: 'canteen-1',
  school: 'S1',
  kind: 'canteen',
  card,
  at,
  meal: m,
  ...extra,
});
const CANTEEN: SchoolTap[] = [
  meal(0, '2026-11-02T08:30', 'breakfast', { reason: 'benefit', benefit: 'free-breakfast' }),
  meal(0, '2026-11-02T12:30', 'lunch', { reason: 'paid-meal', fare: 9500 }),
  meal(1, '2026-11-02T08:40', 'breakfast', { reason: 'paid-meal', fare: 6000 }),
  meal(1, '2026-11-02T12:40', 'lunch', { reason: 'paid-meal', fare: 9500 }),
  meal(0, '2026-11-03T08:20', 'breakfast', { reason: 'benefit', benefit: 'free-breakfast' }),
  meal(0, '2026-11-03T09:00', 'breakfast', { reason: 'paid-meal', fare: 6000 }), // a second breakfast is paid
  meal(1, '2026-11-03T12:10', 'lunch', { result: 'deny', reason: 'not-entitled' }), // refused: not served
  meal(2, '2026-11-16T12:15', 'lunch', { reason: 'benefit', benefit: 'free-lunch' }),
  { device: 'canteen-9', school: 'S2', kind: 'canteen', card: 4, at: '2026-11-02T12:00', meal: 'lunch', reason: 'paid-meal', fare: 9500 },
];

let reg: SchoolRegistry | null = null;
afterEach(() => {
  reg?.close();
  reg = null;
});
async function setup(): Promise<SchoolRegistry> {
  reg = await schoolRegistry(5, ROSTER);
  uploadSchool(reg, [...TURNSTILE, ...CANTEEN]);
  return reg;
}
function section(doc: ReportDoc, id: string): Section {
  const s = doc.sections.find((x) => x.id === id);
  if (!s) throw new Error(`no section ${id}`);
  return s;
}
function noPan(doc: ReportDoc): void {
  const text = JSON.stringify(doc);
  for (let i = 0; i < 5; i++) expect(text).not.toContain(syntheticPan(i));
}

describe('attendance report', () => {
  it('per student and grade: days present, school days, absences, late arrivals and leaving early, as worked out by hand', async () => {
    const r = await setup();
    const doc = attendance(r.db, { school: 'S1', month: '2026-11' });
    expect(doc.period).toEqual({ from: '2026-11-01', to: '2026-11-30' });
    const students = section(doc, 'students');
    // p0: 3 days present (2, 3, 5), 20 school days, 17 absences, late on 3, early on 3; (20-17)/20 = 15 %
    // p1: present on 2 and 7 (a Saturday), 19 absences, never late; (20-19)/20 = 5 %
    // p2: 11 school days from the 16th, present on 16 (late), 10 absences; 1/11 = 9.1 %
    expect(students.rows).toEqual([
      { person: 'p0', grade: 1, schoolDays: 20, present: 3, absent: 17, late: 1, early: 1, rate: 15 },
      { person: 'p1', grade: 1, schoolDays: 20, present: 2, absent: 19, late: 0, early: 0, rate: 5 },
      { person: 'p2', grade: 5, schoolDays: 11, present: 1, absent: 10, late: 1, early: 0, rate: 9.1 },
    ]);
    const grades = section(doc, 'grades');
    expect(grades.rows).toEqual([
      { grade: '1', students: 2, schoolDays: 40, present: 5, absent: 36, late: 1, early: 1, rate: 10 },
      { grade: '5', students: 1, schoolDays: 11, present: 1, absent: 10, late: 1, early: 0, rate: 9.1 },
    ]);
    // 51 school days, 46 absences: (51-46)/51 = 9.8 %
    expect(grades.totals).toEqual({ grade: 'Итого / Total', students: 3, schoolDays: 51, present: 6, absent: 46, late: 2, early: 1, rate: 9.8 });
    expect(students.totals).toMatchObject({ present: 6, absent: 46, late: 2, early: 1 });
  });

  it('per day: first entry and last exit in local time; the chart counts students present and late per day', async () => {
    const r = await setup();
    const doc = attendance(r.db, { school: 'S1', month: '2026-11' });
    expect(section(doc, 'days').rows).toEqual([
      { person: 'p0', grade: 1, date: '2026-11-02', first: '07:50', last: '14:10', late: 0, early: 0 },
      { person: 'p0', grade: 1, date: '2026-11-03', first: '08:15', last: '13:30', late: 1, early: 1 },
      { person: 'p0', grade: 1, date: '2026-11-05', first: '07:55', last: '14:05', late: 0, early: 0 },
      { person: 'p1', grade: 1, date: '2026-11-02', first: '07:40', last: null, late: 0, early: 0 },
      { person: 'p1', grade: 1, date: '2026-11-07', first: '10:00', last: null, late: 0, early: 0 },
      { person: 'p2', grade: 5, date: '2026-11-16', first: '08:30', last: '14:00', late: 1, early: 0 },
    ]);
    const chart = doc.charts[0];
    expect(chart?.x).toHaveLength(30);
    const at = (series: number, day: number) => chart?.series[series]?.values[day - 1];
    expect([at(0, 2), at(0, 3), at(0, 4), at(0, 5), at(0, 7), at(0, 16), at(0, 17)]).toEqual([2, 1, 0, 1, 1, 1, 0]);
    expect([at(1, 2), at(1, 3), at(1, 16)]).toEqual([0, 1, 1]);
    expect(chart?.series[0]?.values.reduce((a, b) => a + b, 0)).toBe(6);
  });

  it('one day: only that day counts', async () => {
    const r = await setup();
    const doc = attendance(r.db, { school: 'S1', day: '2026-11-03' });
    expect(doc.period).toEqual({ from: '2026-11-03', to: '2026-11-03' });
    // p0 late and early; p1 refused at the gate: absent; p2 not enrolled yet: not in the report
    expect(section(doc, 'students').rows).toEqual([
      { person: 'p0', grade: 1, schoolDays: 1, present: 1, absent: 0, late: 1, early: 1, rate: 100 },
      { person: 'p1', grade: 1, schoolDays: 1, present: 0, absent: 1, late: 0, early: 0, rate: 0 },
    ]);
  });

  it('the same registry gives the same document; no PAN in it; the source names the entries it was made from', async () => {
    const r = await setup();
    const a = attendance(r.db, { school: 'S1', month: '2026-11' });
    expect(attendance(r.db, { month: '2026-11', school: 'S1' })).toEqual(a);
    noPan(a);
    expect(a.source).toMatchObject({ journalEntries: 13, rulesVersion: 1 }); // 14 S1 gate entries, one refused
    expect(a.notes.some((n) => n.en.includes('no names'))).toBe(true);
  });

  it('refuses parameters that are not a school and one month or one day', async () => {
    const r = await setup();
    expectRcError(() => attendance(r.db, { school: 'S1' }), ErrorCode.InputInvalid);
    expectRcError(() => attendance(r.db, { school: 'S1', month: '2026-11', day: '2026-11-03' }), ErrorCode.InputInvalid);
    expectRcError(() => attendance(r.db, { school: 'S 1', month: '2026-13' }), ErrorCode.InputInvalid);
  });
});

describe('meals report', () => {
  it('per day × meal kind × category: free meals, paid meals and child-days, as worked out by hand', async () => {
    const r = await setup();
    const doc = meals(r.db, { school: 'S1', month: '2026-11' });
    const daily = section(doc, 'daily');
    expect(daily.rows).toEqual([
      { date: '2026-11-02', meal: 'breakfast', category: 'free-breakfast', free: 1, paid: 0, paidSum: 0, childDays: 1 },
      { date: '2026-11-02', meal: 'breakfast', category: 'none', free: 0, paid: 1, paidSum: 6000, childDays: 1 },
      { date: '2026-11-02', meal: 'lunch', category: 'free-breakfast', free: 0, paid: 1, paidSum: 9500, childDays: 1 },
      { date: '2026-11-02', meal: 'lunch', category: 'none', free: 0, paid: 1, paidSum: 9500, childDays: 1 },
      { date: '2026-11-03', meal: 'breakfast', category: 'free-breakfast', free: 1, paid: 1, paidSum: 6000, childDays: 1 },
      { date: '2026-11-16', meal: 'lunch', category: 'free-lunch', free: 1, paid: 0, paidSum: 0, childDays: 1 },
    ]);
    // 3 free, 4 paid (60 + 95 + 95 + 60 = 310 ₽), 6 child-days
    expect(daily.totals).toEqual({ date: 'Итого / Total', meal: null, category: null, free: 3, paid: 4, paidSum: 31000, childDays: 6 });
  });

  it('the subsidy sheet is free meals × the price of the meal', async () => {
    const r = await setup();
    const doc = meals(r.db, { school: 'S1', month: '2026-11' });
    const s = section(doc, 'subsidy');
    // breakfasts: 2 × 60 ₽ = 120 ₽; lunches: 1 × 95 ₽ = 95 ₽; total 215 ₽
    expect(s.rows).toEqual([
      { meal: 'breakfast', category: 'free-breakfast', free: 2, price: 6000, amount: 12000 },
      { meal: 'lunch', category: 'free-lunch', free: 1, price: 9500, amount: 9500 },
    ]);
    expect(s.totals).toEqual({ meal: 'Итого / Total', category: null, free: 3, price: null, amount: 21500 });
    const chart = doc.charts[0];
    expect(chart?.series.map((x) => x.name)).toEqual(['breakfast', 'lunch']);
    expect(chart?.series[0]?.values[1]).toBe(1); // 2 Nov: one free breakfast
    expect(chart?.series[1]?.values[15]).toBe(1); // 16 Nov: one free lunch
    noPan(doc);
  });

  it('a day of meals: only that day', async () => {
    const r = await setup();
    const doc = meals(r.db, { school: 'S1', day: '2026-11-03' });
    expect(section(doc, 'daily').totals).toMatchObject({ free: 1, paid: 1, paidSum: 6000, childDays: 1 });
    expect(section(doc, 'subsidy').totals).toMatchObject({ free: 1, amount: 6000 });
  });
});

/**
 * The reports read the school's rules the way its devices run them (published-rules.ts): `rules`, then
 * `rules-<kind>`, then `rules-school-<id>`, each section from the most specific document that has it.
 */
describe('school reports read the rules the school devices run with', () => {
  const FIXTURE = SCHOOL_RULES as { school: unknown; canteen: unknown };
  async function withRules(docs: Record<string, unknown>): Promise<SchoolRegistry> {
    const r = await setup();
    r.pub.setConfig('rules', { schema: 1 }); // the general document no longer carries the school or canteen parts
    for (const [name, doc] of Object.entries(docs)) r.pub.setConfig(name, doc);
    return r;
  }

  it('canteen rules published only as rules-canteen price the subsidy sheet', async () => {
    const r = await withRules({ 'rules-canteen': { schema: 1, canteen: FIXTURE.canteen } });
    const doc = meals(r.db, { school: 'S1', month: '2026-11' });
    const s = section(doc, 'subsidy');
    // the same sheet as with the general document: breakfasts 2 × 60 ₽, lunch 1 × 95 ₽
    expect(s.rows).toEqual([
      { meal: 'breakfast', category: 'free-breakfast', free: 2, price: 6000, amount: 12000 },
      { meal: 'lunch', category: 'free-lunch', free: 1, price: 9500, amount: 9500 },
    ]);
    expect(s.totals).toMatchObject({ free: 3, amount: 21500 });
    expect(doc.notes.some((n) => n.en.startsWith('No price for'))).toBe(false);
    expect(doc.source).toMatchObject({ rulesDocument: 'rules-canteen', rulesVersion: 1 });
    expect(meals(r.db, { month: '2026-11', school: 'S1' })).toEqual(doc);
  });

  it("the school's own document wins over rules-canteen for the prices it gives; another school's does not count", async () => {
    const canteen = FIXTURE.canteen as { meals: unknown; paidPriceKopecks: Record<string, number> };
    const r = await withRules({
      'rules-canteen': { schema: 1, canteen: FIXTURE.canteen },
      'rules-school-S1': { schema: 1, canteen: { ...canteen, paidPriceKopecks: { breakfast: 7000, lunch: 9500 } } },
      'rules-school-S2': { schema: 1, canteen: { ...canteen, paidPriceKopecks: { breakfast: 1, lunch: 1 } } },
    });
    const s = section(meals(r.db, { school: 'S1', month: '2026-11' }), 'subsidy');
    // breakfasts 2 × 70 ₽ = 140 ₽, lunch 95 ₽
    expect(s.totals).toMatchObject({ free: 3, amount: 14000 + 9500 });
    expect(meals(r.db, { school: 'S1', month: '2026-11' }).source).toMatchObject({ rulesDocument: 'rules-school-S1', rulesVersion: 1 });
  });

  it('school schedules published as rules-school-<id> give the attendance its school days', async () => {
    const r = await withRules({ 'rules-school-S1': { schema: 1, school: FIXTURE.school } });
    const doc = attendance(r.db, { school: 'S1', month: '2026-11' });
    // the same figures as with the general document (first test above)
    expect(section(doc, 'students').rows).toEqual([
      { person: 'p0', grade: 1, schoolDays: 20, present: 3, absent: 17, late: 1, early: 1, rate: 15 },
      { person: 'p1', grade: 1, schoolDays: 20, present: 2, absent: 19, late: 0, early: 0, rate: 5 },
      { person: 'p2', grade: 5, schoolDays: 11, present: 1, absent: 10, late: 1, early: 0, rate: 9.1 },
    ]);
    expect(doc.notes.some((n) => n.en.startsWith('No school rules published'))).toBe(false);
    expect(doc.source).toMatchObject({ rulesDocument: 'rules-school-S1', rulesVersion: 1 });
    expect(attendance(r.db, { month: '2026-11', school: 'S1' })).toEqual(doc);
    // another school's document is not this school's: S2 has no school days
    const s2 = attendance(r.db, { school: 'S2', month: '2026-11' });
    expect(section(s2, 'students').totals).toMatchObject({ schoolDays: 0 });
    expect(s2.source).toMatchObject({ rulesDocument: '-', rulesVersion: 0 });
  });

  it('school schedules published as rules-turnstile count too', async () => {
    const r = await withRules({ 'rules-turnstile': { schema: 1, school: FIXTURE.school } });
    const doc = attendance(r.db, { school: 'S1', day: '2026-11-03' });
    expect(section(doc, 'students').rows).toEqual([
      { person: 'p0', grade: 1, schoolDays: 1, present: 1, absent: 0, late: 1, early: 1, rate: 100 },
      { person: 'p1', grade: 1, schoolDays: 1, present: 0, absent: 1, late: 0, early: 0, rate: 0 },
    ]);
    expect(doc.source).toMatchObject({ rulesDocument: 'rules-turnstile' });
  });
});
