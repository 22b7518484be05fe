import { display } from './messages.js';
import { enrolled, schoolScope, schoolStopped } from './school.js';
import { effectiveTime, isExpired, localTime, mark } from './time.js';
import { counterKey, type CanteenContext, type CounterAdd, type Decision, type Reason, type Tap, type TokenMarks, type View } from './types.js';

/** The counter of free meals given by a grade rule in a local day (its `perDay`). */
const GRADE_MEALS_COUNTER = 'free-grade-meal';

/**
 * Canteen terminal. The meal is the one whose window holds the local time (none,
 * or a holiday → `outside-hours`). Not in the school's list → `not-enrolled`.
 * A meal is free (`benefit`) once per kind per local day when the person's meal
 * category covers its kind (benefit: the category), or, for a student, when a
 * grade rule covers the grade and the kind and its `perDay` is not used up
 * (benefit: `grades-<from>-<to>`). A meal of a kind already taken free today is
 * sold at its price, or refused (`meal-already-taken`) when the kind has no price
 * or the school's rule is `secondFreeMeal: refuse`. Without any free entitlement:
 * a paid meal (`paid-meal`, its price in the fare, for accounting) if priced, else `not-entitled`.
 */
export function decideCanteen(tap: Tap, view: View, cfg: CanteenContext): Decision {
  const rules = cfg.canteen;
  const eff = effectiveTime(tap, view.marks);
  const lt = localTime(eff, cfg.device.timeZone);
  const flags: string[] = [];
  if (tap.wallTime < eff - 60_000) flags.push('clock-behind');
  const marks: TokenMarks = { ...view.marks, anchor: mark(tap, eff) };
  const entry = view.schools[schoolScope(cfg)];
  const meal = rules.holidays.includes(lt.date) ? undefined : rules.meals.find((m) => m.from <= lt.hm && lt.hm < m.to);
  const out = (result: 'allow' | 'deny', reason: Reason, fare = 0, benefit: string | null = null, add: CounterAdd[] = []): Decision => ({
    kind: 'canteen',
    result,
    reason,
    fareKopecks: fare,
    benefit,
    display: display(reason, fare, result, 'canteen'),
    counterDelta: { add, marks },
    effectiveTime: eff,
    flags,
    ...(meal ? { meal: meal.kind } : {}),
  });

  if (schoolStopped(view.stop)) return out('deny', 'stop-list');
  if (!enrolled(entry, lt)) return out('deny', 'not-enrolled');
  if (isExpired(tap.card.expiry ?? entry.cardExpiry, lt)) return out('deny', 'card-expired');
  if (!meal) return out('deny', 'outside-hours');
  const byCategory = entry.mealCategory ? (rules.categories[entry.mealCategory] ?? []).includes(meal.kind) : false;
  const grade = entry.role === 'student' && entry.grade !== null ? rules.grades.find((g) => entry.grade! >= g.from && entry.grade! <= g.to) : undefined;
  const byGrade = grade?.meals.includes(meal.kind) ?? false;
  const gradeUsed = view.counters[counterKey(GRADE_MEALS_COUNTER, lt.date)] ?? 0;
  const gradeLeft = grade ? gradeUsed < (grade.perDay ?? grade.meals.length) : false;
  const price = rules.paidPriceKopecks?.[meal.kind];
  const name = `meal:${meal.kind}`;
  const taken = view.counters[counterKey(name, lt.date)] ?? 0;
  const paid = (): Decision => out('allow', 'paid-meal', price!, null, [{ name: `paid-${name}`, period: lt.date, by: 1 }]);
  if (taken === 0 && byCategory) return out('allow', 'benefit', 0, entry.mealCategory, [{ name, period: lt.date, by: 1 }]);
  if (taken === 0 && byGrade && gradeLeft) {
    const add = [
      { name, period: lt.date, by: 1 },
      { name: GRADE_MEALS_COUNTER, period: lt.date, by: 1 },
    ];
    return out('allow', 'benefit', 0, `grades-${grade!.from}-${grade!.to}`, add);
  }
  // a free entitlement to this kind that today's meals have used up
  const usedUp = byCategory || byGrade;
  if (price !== undefined && !(usedUp && taken > 0 && rules.secondFreeMeal === 'refuse')) return paid();
  return usedUp ? out('deny', 'meal-already-taken') : out('deny', 'not-entitled');
}
