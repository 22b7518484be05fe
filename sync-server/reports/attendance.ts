import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { IsoDate, YearMonth } from '../../protocol/lists.js';
import type { Bilingual, Column, ReportDoc, Row } from '../../protocol/reports.js';
import { type CanteenRules, type SchoolRules, type Weekday } from '../../protocol/rules-schema.js';
import { localTime } from '../../protocol/rules/index.js';
import { publishedSectionFor } from '../published-rules.js';
import { containsText, jsonArrayValues, tableExists } from '../db/sql.js';
import type { Db } from '../registry.js';
import { DEFAULT_SETTLEMENT, dayLowerBoundMs } from '../settlement/days.js';

/**
 * What a school report is made from, shared by attendance and meals: the
 * parameters (school and month or day), the days of the period, the school's
 * people (enrolments), their card tokens, the school's journal entries (a
 * device enrolled for the school, or an entry made on the school's list) and
 * the published rules. People appear by person_id: the roster import carries
 * no names.
 */

export const SchoolReportParams = z
  .object({
    school: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'school id: letters, digits, _ or -'),
    month: YearMonth.optional(),
    day: IsoDate.optional(),
  })
  .strict()
  .refine((p) => (p.month === undefined) !== (p.day === undefined), { message: 'give exactly one of month or day' });
export type SchoolReportParams = z.infer<typeof SchoolReportParams>;

export interface SchoolReportOptions {
  /** IANA time zone of the school's clock (first entry, last exit, late); the server's settlement zone by default. */
  timeZone?: string;
}

export function parseParams(params: Record<string, string>): SchoolReportParams {
  const p = SchoolReportParams.safeParse(params);
  if (!p.success) {
    throw new RcError(
      ErrorCode.InputInvalid,
      `school report parameters: ${p.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`,
      {
        params: Object.keys(params),
      },
    );
  }
  return p.data;
}

/** The inclusive local dates of the period: the days of the month, or the one day. */
export function periodDays(p: SchoolReportParams): string[] {
  if (p.day !== undefined) return [p.day];
  const [y, m] = (p.month ?? '').split('-').map(Number) as [number, number];
  const n = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return Array.from({ length: n }, (_, i) => `${p.month}-${String(i + 1).padStart(2, '0')}`);
}

const WEEKDAYS: Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
export function weekdayOf(day: string): Weekday {
  return WEEKDAYS[new Date(`${day}T12:00:00Z`).getUTCDay()] ?? 'mon';
}

/** Which published document (name and version) a section of the rules came from. */
export interface RulesOrigin {
  doc: string;
  version: number;
}

/**
 * The school's rules as its devices run them (published-rules.ts, the same resolution enrolment hands out):
 * the school section as a turnstile of that school reads it (`rules`, `rules-turnstile`, `rules-school-<id>`),
 * the canteen section as a canteen terminal of that school reads it (`rules`, `rules-canteen`, `rules-school-<id>`),
 * each with the document it came from; nulls when none is published. Without a school, the kinds' documents only.
 */
export function publishedSchoolRules(
  db: Db,
  school: string | null = null,
): { school: SchoolRules | null; canteen: CanteenRules | null; from: { school: RulesOrigin | null; canteen: RulesOrigin | null } } {
  const s = publishedSectionFor(db, 'turnstile', school, 'school');
  const c = publishedSectionFor(db, 'canteen', school, 'canteen');
  return {
    school: s?.value ?? null,
    canteen: c?.value ?? null,
    from: { school: s && { doc: s.doc, version: s.version }, canteen: c && { doc: c.doc, version: c.version } },
  };
}

export interface Person {
  person: string;
  role: string;
  grade: number | null;
  mealCategory: string | null;
  from: string;
  to: string;
}

/** The school's people enrolled at some point of [from, to] (one row per person: the latest enrolment), with their tokens. */
export function schoolPeople(db: Db, school: string, from: string, to: string): { people: Map<string, Person>; byToken: Map<string, string> } {
  const rows = db
    .prepare(
      `SELECT person_id AS person, role, grade, meal_category AS "mealCategory", valid_from AS "from", valid_to AS "to" FROM enrolments
       WHERE school_id = ? AND valid_from <= ? AND valid_to >= ? ORDER BY person_id, valid_from`,
    )
    .all(school, to, from) as Person[];
  const people = new Map<string, Person>();
  for (const r of rows) {
    const prev = people.get(r.person);
    // several enrolments of one person in the period: the latest gives grade and category, validity spans them all
    people.set(r.person, prev ? { ...r, from: prev.from < r.from ? prev.from : r.from, to: prev.to > r.to ? prev.to : r.to } : r);
  }
  const byToken = new Map<string, string>();
  const tok = db.prepare('SELECT person_id AS person, token FROM cards').all() as { person: string; token: string }[];
  for (const t of tok) if (people.has(t.person)) byToken.set(t.token, t.person);
  return { people, byToken };
}

export interface SchoolEntryRow {
  token: string;
  direction: string | null;
  reason: string;
  fare: number;
  benefit: string | null;
  meal: string | null;
  eff_ms: number;
  service_day: string;
  received_at: string;
}

/**
 * Allowed journal entries of `kind` at this school in [from, to]: from a device enrolled for the school, or made on the school's list.
 * The effective-time bounds (service days ± 2 days cover any zone and day end) let SQLite use the journal's time index.
 */
export function schoolEntries(db: Db, kind: 'turnstile' | 'canteen', school: string, from: string, to: string): SchoolEntryRow[] {
  const hasIdentities = tableExists(db, 'device_identities');
  const devices = hasIdentities ? (db.prepare('SELECT id FROM device_identities WHERE school = ?').pluck().all(school) as string[]) : [];
  const scopeKey = `"school:${school}"`;
  const rows = db
    .prepare(
      `SELECT token, direction, reason, fare, benefit, meal, eff_ms, service_day, received_at FROM journal
       WHERE eff_ms >= ? AND eff_ms < ? AND kind = ? AND result = 'allow' AND token IS NOT NULL AND service_day >= ? AND service_day <= ?
         AND (device IN (${jsonArrayValues(db)}) OR ${containsText(db, 'lists')})
       ORDER BY eff_ms, device, seq`,
    )
    .all(dayLowerBoundMs(from), dayLowerBoundMs(to) + 5 * 86_400_000, kind, from, to, JSON.stringify(devices), scopeKey) as SchoolEntryRow[];
  return rows;
}

/**
 * What the document was made from: how many entries, the latest arrival among them, the rules document the report's
 * section came from (name and version; '-' and 0 when none is published) and the school list version.
 */
export function schoolSource(db: Db, school: string, rows: SchoolEntryRow[], rules: RulesOrigin | null): Record<string, string | number> {
  let last = '';
  for (const r of rows) if (r.received_at > last) last = r.received_at;
  const list = (db.prepare('SELECT version FROM scopes WHERE scope = ?').pluck().get(`school:${school}`) as number | undefined) ?? 0;
  return {
    journalEntries: rows.length,
    journalReceivedUpTo: last || '-',
    rulesDocument: rules?.doc ?? '-',
    rulesVersion: rules?.version ?? 0,
    [`list:school:${school}`]: list,
  };
}

export const NO_NAMES: Bilingual = {
  ru: 'Ученики указаны по person_id: импорт списков не содержит имён.',
  en: 'Students appear by person_id: the roster import carries no names.',
};

const col = (key: string, ru: string, en: string, kind: Column['kind']): Column => ({ key, title: { ru, en }, kind });
export { col };

/** A school day for students: a weekday with a student window, not a holiday. Its start and end are the earliest window start and the latest window end. */
function schoolDay(rules: SchoolRules | null, day: string): { start: string; end: string } | null {
  if (!rules || rules.holidays.includes(day)) return null;
  const wd = weekdayOf(day);
  const ws = (rules.schedules.student ?? []).filter((w) => w.days.includes(wd));
  if (ws.length === 0) return null;
  let start = '24:00';
  let end = '00:00';
  for (const w of ws) {
    if (w.from < start) start = w.from;
    if (w.to > end) end = w.to;
  }
  return { start, end };
}

const pct = (a: number, b: number) => (b === 0 ? null : Math.round((1000 * a) / b) / 10);

/**
 * Attendance of one school for a month or a day, from the turnstiles'
 * allowed passages: per grade and per student the days present, school days,
 * absences (school days of the student's enrolment without an entry; holidays
 * and days without a student schedule are not school days), late arrivals
 * (first entry after the day's first window start) and early leaving (last
 * exit before the day's last window end), and per student and day the first
 * entry and the last exit. A chart of students present per day.
 */
export function build(db: Db, params: Record<string, string>, opts: SchoolReportOptions = {}): ReportDoc {
  const p = parseParams(params);
  const tz = opts.timeZone ?? DEFAULT_SETTLEMENT.timeZone;
  const days = periodDays(p);
  const from = days[0] ?? '';
  const to = days[days.length - 1] ?? '';
  const rules = publishedSchoolRules(db, p.school);
  const { people, byToken } = schoolPeople(db, p.school, from, to);
  const students = [...people.values()].filter((x) => x.role === 'student');
  const rows = schoolEntries(db, 'turnstile', p.school, from, to);
  const sched = new Map(days.map((d) => [d, schoolDay(rules.school, d)]));

  // per student and day: first entry and last exit (epoch ms)
  interface Day {
    first: number | null;
    last: number | null;
  }
  const seen = new Map<string, Map<string, Day>>();
  const hmCache = new Map<number, string>();
  const hm = (ms: number) => {
    const k = Math.floor(ms / 60_000);
    let v = hmCache.get(k);
    if (v === undefined) {
      v = localTime(ms, tz).hm;
      hmCache.set(k, v);
    }
    return v;
  };
  for (const r of rows) {
    const person = byToken.get(r.token);
    if (person === undefined || people.get(person)?.role !== 'student') continue;
    let pd = seen.get(person);
    if (!pd) seen.set(person, (pd = new Map()));
    let d = pd.get(r.service_day);
    if (!d) pd.set(r.service_day, (d = { first: null, last: null }));
    if (r.direction === 'exit') {
      if (d.last === null || r.eff_ms > d.last) d.last = r.eff_ms;
    } else if (d.first === null || r.eff_ms < d.first) d.first = r.eff_ms;
  }

  const byStudent: Row[] = [];
  const detail: Row[] = [];
  const perDay = new Map(days.map((d) => [d, { present: 0, late: 0 }]));
  interface Agg {
    students: number;
    schoolDays: number;
    present: number;
    absent: number;
    late: number;
    early: number;
  }
  const grades = new Map<string, Agg>();
  const sorted = students.sort((a, b) => (a.grade ?? 99) - (b.grade ?? 99) || (a.person < b.person ? -1 : a.person > b.person ? 1 : 0));
  for (const s of sorted) {
    const pd = seen.get(s.person) ?? new Map<string, Day>();
    let schoolDays = 0;
    let present = 0;
    let absent = 0;
    let late = 0;
    let early = 0;
    for (const day of days) {
      const sd = day >= s.from && day <= s.to ? (sched.get(day) ?? null) : null;
      const d = pd.get(day);
      const here = d !== undefined && d.first !== null;
      if (sd) schoolDays++;
      if (here) present++;
      if (sd && !here) absent++;
      const firstHm = d?.first != null ? hm(d.first) : null;
      const lastHm = d?.last != null ? hm(d.last) : null;
      const isLate = sd !== null && firstHm !== null && firstHm > sd.start;
      const isEarly = sd !== null && lastHm !== null && lastHm < sd.end;
      if (isLate) late++;
      if (isEarly) early++;
      const c = perDay.get(day);
      if (c && here) c.present++;
      if (c && isLate) c.late++;
      if (d) {
        detail.push({ person: s.person, grade: s.grade, date: day, first: firstHm, last: lastHm, late: isLate ? 1 : 0, early: isEarly ? 1 : 0 });
      }
    }
    byStudent.push({ person: s.person, grade: s.grade, schoolDays, present, absent, late, early, rate: pct(schoolDays - absent, schoolDays) });
    const g = String(s.grade ?? '-');
    const a = grades.get(g) ?? { students: 0, schoolDays: 0, present: 0, absent: 0, late: 0, early: 0 };
    grades.set(g, {
      students: a.students + 1,
      schoolDays: a.schoolDays + schoolDays,
      present: a.present + present,
      absent: a.absent + absent,
      late: a.late + late,
      early: a.early + early,
    });
  }
  const sum = (k: keyof Agg) => [...grades.values()].reduce((t, a) => t + a[k], 0);
  const gradeRows: Row[] = [...grades.entries()].map(([grade, a]) => ({ grade, ...a, rate: pct(a.schoolDays - a.absent, a.schoolDays) }));
  const total = {
    students: sum('students'),
    schoolDays: sum('schoolDays'),
    present: sum('present'),
    absent: sum('absent'),
    late: sum('late'),
    early: sum('early'),
  };

  const counts = [
    col('schoolDays', 'Учебных дней', 'School days', 'int'),
    col('present', 'Дней присутствия', 'Days present', 'int'),
    col('absent', 'Пропусков', 'Absences', 'int'),
    col('late', 'Опозданий', 'Late arrivals', 'int'),
    col('early', 'Ранних уходов', 'Left early', 'int'),
    col('rate', 'Посещаемость, % учебных дней', 'Attendance, % of school days', 'percent'),
  ];
  const period = p.day !== undefined ? p.day : p.month;
  const notes: Bilingual[] = [
    NO_NAMES,
    {
      ru: 'Опоздание: первый вход позже начала первого окна расписания учеников; ранний уход: последний выход раньше конца последнего окна. Праздники и дни без расписания не учебные.',
      en: "Late: the first entry after the start of the students' first schedule window; left early: the last exit before the end of the last window. Holidays and days without a schedule are not school days.",
    },
    { ru: `Время местное (${tz}).`, en: `Local time (${tz}).` },
  ];
  if (!rules.school) notes.push({ ru: 'Правила школы не опубликованы: учебные дни не определены.', en: 'No school rules published: no school days known.' });

  const doc: ReportDoc = {
    report: 'attendance',
    title: { ru: `Посещаемость: школа ${p.school}, ${period}`, en: `Attendance: school ${p.school}, ${period}` },
    params: Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1))),
    period: { from, to },
    source: schoolSource(db, p.school, rows, rules.from.school),
    sections: [
      {
        id: 'grades',
        title: { ru: 'По классам', en: 'By grade' },
        columns: [col('grade', 'Класс', 'Grade', 'text'), col('students', 'Учеников', 'Students', 'int'), ...counts],
        rows: gradeRows,
        totals: { grade: 'Итого / Total', ...total, rate: pct(total.schoolDays - total.absent, total.schoolDays) },
      },
      {
        id: 'students',
        title: { ru: 'По ученикам', en: 'By student' },
        columns: [col('person', 'Ученик (person_id)', 'Student (person_id)', 'text'), col('grade', 'Класс', 'Grade', 'int'), ...counts],
        rows: byStudent,
        totals: { person: 'Итого / Total', grade: null, ...total, rate: pct(total.schoolDays - total.absent, total.schoolDays) },
      },
      {
        id: 'days',
        title: { ru: 'По дням: первый вход и последний выход', en: 'Per day: first entry and last exit' },
        columns: [
          col('person', 'Ученик (person_id)', 'Student (person_id)', 'text'),
          col('grade', 'Класс', 'Grade', 'int'),
          col('date', 'Дата', 'Date', 'date'),
          col('first', 'Первый вход', 'First entry', 'time'),
          col('last', 'Последний выход', 'Last exit', 'time'),
          col('late', 'Опоздание', 'Late', 'int'),
          col('early', 'Ранний уход', 'Left early', 'int'),
        ],
        rows: detail,
      },
    ],
    charts: [
      {
        title: { ru: 'Присутствие по дням', en: 'Attendance per day' },
        kind: 'bar',
        xTitle: { ru: 'День', en: 'Day' },
        yTitle: { ru: 'Учеников', en: 'Students' },
        x: days,
        series: [
          { name: 'Присутствовали / Present', values: days.map((d) => perDay.get(d)?.present ?? 0) },
          { name: 'Опоздали / Late', values: days.map((d) => perDay.get(d)?.late ?? 0) },
        ],
      },
    ],
    notes,
  };
  return doc; // render() checks it against the schema
}
