import type { Bilingual, ReportDoc, Row } from '../../protocol/reports.js';
import type { Db } from '../registry.js';
import {
  NO_NAMES,
  col,
  parseParams,
  periodDays,
  publishedSchoolRules,
  schoolEntries,
  schoolPeople,
  schoolSource,
  type SchoolReportOptions,
} from './attendance.js';

/** The category shown for a meal: the free meal's category, else the person's meal category, else "none". */
const NONE = 'none';

/**
 * The report tables' one grouping: fold items into one accumulator per key (its parts, e.g. day, meal
 * kind, category) and give the groups back ordered by key, part by part.
 */
function groupSorted<T, A, K extends readonly string[]>(items: Iterable<T>, keyOf: (item: T) => K, init: () => A, add: (acc: A, item: T) => void): [K, A][] {
  const groups = new Map<string, [K, A]>();
  for (const item of items) {
    const key = keyOf(item);
    const id = key.join('\t');
    let g = groups.get(id);
    if (!g) groups.set(id, (g = [key, init()]));
    add(g[1], item);
  }
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
}

/**
 * Meals of one school's canteen for a month or a day, from the canteen
 * terminals' allowed entries: per day × meal kind × category the free meals
 * served, paid meals (count and sum) and child-days (distinct students fed);
 * the monthly subsidy sheet, free meals × the price of the meal kind (the
 * published canteen rules' `paidPriceKopecks`); a chart of free meals per day
 * per meal kind.
 */
export function build(db: Db, params: Record<string, string>, _opts: SchoolReportOptions = {}): ReportDoc {
  const p = parseParams(params);
  const days = periodDays(p);
  const from = days[0] ?? '';
  const to = days[days.length - 1] ?? '';
  const rules = publishedSchoolRules(db, p.school);
  const { people, byToken } = schoolPeople(db, p.school, from, to);
  const rows = schoolEntries(db, 'canteen', p.school, from, to);
  const prices = rules.canteen?.paidPriceKopecks ?? {};

  const kinds = new Set<string>((rules.canteen?.meals ?? []).map((m) => m.kind));
  let unknown = 0;
  const served = rows.map((r) => {
    const meal = r.meal ?? '-';
    kinds.add(meal);
    const person = byToken.get(r.token);
    if (person === undefined) unknown++;
    const isFree = r.reason === 'benefit';
    const category = isFree ? (r.benefit ?? NONE) : ((person !== undefined ? people.get(person)?.mealCategory : null) ?? NONE);
    return { day: r.service_day, meal, category, isFree, fare: r.fare, child: person ?? r.token };
  });

  // per day × meal kind × category: free and paid meals, child-days
  const daily = groupSorted(
    served,
    (e) => [e.day, e.meal, e.category] as const,
    () => ({ free: 0, paid: 0, paidSum: 0, children: new Set<string>() }),
    (c, e) => {
      if (e.isFree) c.free++;
      else {
        c.paid++;
        c.paidSum += e.fare;
      }
      c.children.add(e.child);
    },
  ).map(([[date, meal, category], c]) => ({ date, meal, category, free: c.free, paid: c.paid, paidSum: c.paidSum, childDays: c.children.size }));
  const tot = (rs: Row[], k: string) => rs.reduce((t, r) => t + (typeof r[k] === 'number' ? r[k] : 0), 0);

  // subsidy sheet: per meal kind × category, free meals × price
  const unpriced = new Set<string>();
  const subsidy = groupSorted(
    daily.filter((r) => r.free > 0),
    (r) => [r.meal, r.category] as const,
    () => ({ free: 0 }),
    (c, r) => (c.free += r.free),
  ).map(([[meal, category], { free }]) => {
    const price = prices[meal];
    if (price === undefined) unpriced.add(meal);
    return { meal, category, free, price: price ?? null, amount: price === undefined ? null : free * price };
  });

  const mealKinds = [...kinds].sort();
  const freePerDay = (meal: string) => days.map((d) => daily.filter((r) => r.date === d && r.meal === meal).reduce((t, r) => t + r.free, 0));
  const notes: Bilingual[] = [
    NO_NAMES,
    {
      ru: 'Дето-дни: число разных учеников, получивших питание этого вида в этот день в этой категории.',
      en: 'Child-days: the number of distinct students fed this meal kind on that day in that category.',
    },
    {
      ru: 'Субсидия = бесплатные порции × цена порции (paidPriceKopecks опубликованных правил столовой).',
      en: "Subsidy = free meals × the meal's price (paidPriceKopecks of the published canteen rules).",
    },
  ];
  if (unpriced.size > 0) {
    const list = [...unpriced].sort().join(', ');
    notes.push({ ru: `Нет цены для: ${list} — сумма субсидии не рассчитана.`, en: `No price for: ${list} — subsidy amount not computed.` });
  }
  if (unknown > 0) notes.push({ ru: `Записей без ученика в списке: ${unknown}.`, en: `Entries of a card not on the roster: ${unknown}.` });
  const period = p.day !== undefined ? p.day : p.month;

  const doc: ReportDoc = {
    report: 'meals',
    title: { ru: `Питание: школа ${p.school}, ${period}`, en: `Meals: school ${p.school}, ${period}` },
    params: Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1))),
    period: { from, to },
    source: schoolSource(db, p.school, rows, rules.from.canteen),
    sections: [
      {
        id: 'daily',
        title: { ru: 'По дням, видам питания и категориям', en: 'Per day, meal kind and category' },
        columns: [
          col('date', 'Дата', 'Date', 'date'),
          col('meal', 'Питание', 'Meal', 'text'),
          col('category', 'Категория', 'Category', 'text'),
          col('free', 'Бесплатных порций', 'Free meals', 'int'),
          col('paid', 'Платных порций', 'Paid meals', 'int'),
          col('paidSum', 'Оплачено, ₽', 'Paid, ₽', 'kopecks'),
          col('childDays', 'Дето-дней', 'Child-days', 'int'),
        ],
        rows: daily,
        totals: {
          date: 'Итого / Total',
          meal: null,
          category: null,
          free: tot(daily, 'free'),
          paid: tot(daily, 'paid'),
          paidSum: tot(daily, 'paidSum'),
          childDays: tot(daily, 'childDays'),
        },
      },
      {
        id: 'subsidy',
        title: { ru: 'Ведомость субсидии', en: 'Subsidy sheet' },
        columns: [
          col('meal', 'Питание', 'Meal', 'text'),
          col('category', 'Категория', 'Category', 'text'),
          col('free', 'Бесплатных порций', 'Free meals', 'int'),
          col('price', 'Цена порции, ₽', 'Meal price, ₽', 'kopecks'),
          col('amount', 'Субсидия, ₽', 'Subsidy, ₽', 'kopecks'),
        ],
        rows: subsidy,
        totals: { meal: 'Итого / Total', category: null, free: tot(subsidy, 'free'), price: null, amount: tot(subsidy, 'amount') },
      },
    ],
    charts: [
      {
        title: { ru: 'Бесплатное питание по дням', en: 'Free meals per day' },
        kind: 'bar',
        xTitle: { ru: 'День', en: 'Day' },
        yTitle: { ru: 'Порций', en: 'Meals' },
        x: days,
        series: mealKinds.map((m) => ({ name: m, values: freePerDay(m) })),
      },
    ],
    notes,
  };
  return doc; // render() checks it against the schema
}
