import { display } from './messages.js';
import { enrolled, schoolScope, schoolStopped } from './school.js';
import { effectiveTime, isExpired, localTime, mark } from './time.js';
import { counterKey, type CanteenContext, type CounterAdd, type Decision, type Reason, type Tap, type TokenMarks, type View } from './types.js';

/**
 * Canteen terminal. The meal is the one whose window holds the local time (none,
 * or a holiday → `outside-hours`). Not in the school's list → `not-enrolled`.
 * A meal category that covers this meal kind gives one free meal per kind per
 * local day (`benefit`); another one is a paid meal if the config prices it
 * (`paid-meal`), else refused (`meal-already-taken`). Without a covering category:
 * paid meal if priced, else `not-entitled`.
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
  const free = entry.mealCategory ? (rules.categories[entry.mealCategory] ?? []) : [];
  const price = rules.paidPriceKopecks?.[meal.kind];
  const name = `meal:${meal.kind}`;
  const taken = view.counters[counterKey(name, lt.date)] ?? 0;
  if (entry.mealCategory && free.includes(meal.kind) && taken === 0) {
    return out('allow', 'benefit', 0, entry.mealCategory, [{ name, period: lt.date, by: 1 }]);
  }
  if (price !== undefined) return out('allow', 'paid-meal', price, null, [{ name: `paid-${name}`, period: lt.date, by: 1 }]);
  return free.includes(meal.kind) ? out('deny', 'meal-already-taken') : out('deny', 'not-entitled');
}
