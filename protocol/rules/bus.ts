import { display } from './messages.js';
import { effectiveTime, elapsedMs, isExpired, localTime, mark } from './time.js';
import { counterKey, type BusContext, type CounterAdd, type Decision, type Reason, type Tap, type TokenMarks, type View } from './types.js';

interface Candidate {
  fare: number;
  reason: Reason;
  benefit: string | null;
  quota?: CounterAdd;
}

/**
 * Bus validator. In order:
 *  1. route not in the tariff → deny `unknown-route` (a config error, journaled)
 *  2. stop-listed → deny `stop-list` (even with a benefit)
 *  3. expired (past the end of the expiry month, local time) → deny `card-expired`
 *  4. same card, same vehicle and route, within the repeat window → allow `repeat-tap`, 0, no quota
 *  5. the best of: each valid entitlement the tariff knows (free / percent / fixed; a quota
 *     used up gives full fare `quota-exhausted`, or deny if the tariff says so), a transfer
 *     (another route, within the window after a paid tap, under the maximum), full fare
 *     (`full-fare`; an unknown card is charged later: flag `deferred-charge`)
 *  6. the daily cap: fares charged today never exceed it; the excess is cut (`capped`).
 */
export function decideBus(tap: Tap, view: View, cfg: BusContext): Decision {
  const tariff = cfg.tariff;
  const route = tap.route ?? cfg.device.route;
  const vehicle = tap.vehicle ?? cfg.device.vehicle ?? cfg.device.id;
  const eff = effectiveTime(tap, view.marks);
  const lt = localTime(eff, cfg.device.timeZone);
  const flags: string[] = [];
  if (tap.wallTime < eff - 60_000) flags.push('clock-behind');
  const now = mark(tap, eff);
  const base: TokenMarks = { ...view.marks, anchor: now };

  const out = (result: 'allow' | 'deny', reason: Reason, fare: number, benefit: string | null, add: CounterAdd[] = [], marks: TokenMarks = base): Decision => ({
    kind: 'bus',
    result,
    reason,
    fareKopecks: fare,
    benefit,
    display: display(reason, fare, result),
    counterDelta: { add, marks },
    effectiveTime: eff,
    flags,
    route,
    vehicle,
  });

  const routeCfg = tariff.routes[route];
  if (!routeCfg) return out('deny', 'unknown-route', 0, null);
  if (view.stop) {
    flags.push(`stop:${view.stop.reason}`);
    return out('deny', 'stop-list', 0, null);
  }
  const expiry = tap.card.expiry ?? view.transit?.cardExpiry ?? null;
  if (isExpired(expiry, lt)) return out('deny', 'card-expired', 0, null);

  const lr = view.marks.lastRide;
  if (lr && lr.vehicle === vehicle && lr.route === route && elapsedMs(lr, tap, eff) < tariff.repeatWindowSec * 1000) {
    return out('allow', 'repeat-tap', 0, null);
  }

  const full = routeCfg.fullFareKopecks;
  const benefits: Candidate[] = [];
  let exhaustedDeny: string | null = null;
  let exhaustedFull: string | null = null;
  for (const b of view.transit?.benefits ?? []) {
    if (lt.date < b.validFrom || lt.date > b.validTo) continue;
    const rule = tariff.benefits[b.category];
    if (!rule) continue;
    const fare = rule.kind === 'free' ? 0 : rule.kind === 'percent' ? Math.round((full * (100 - rule.percentOff)) / 100) : Math.min(rule.fareKopecks, full);
    if (rule.quota) {
      const period = rule.quota.per === 'month' ? lt.month : lt.date;
      const name = `quota:${b.category}`;
      const used = view.counters[counterKey(name, period)] ?? 0;
      if (used >= rule.quota.trips) {
        if (rule.quota.onExhausted === 'deny') exhaustedDeny ??= b.category;
        else exhaustedFull ??= b.category;
        continue;
      }
      benefits.push({ fare, reason: 'benefit', benefit: b.category, quota: { name, period, by: 1 } });
    } else benefits.push({ fare, reason: 'benefit', benefit: b.category });
  }
  // best entitlement: lowest fare, then one that uses no quota
  benefits.sort((a, b) => a.fare - b.fare || (a.quota ? 1 : 0) - (b.quota ? 1 : 0));
  let chosen: Candidate | undefined = benefits[0];

  const lp = view.marks.lastPaid;
  const tr = tariff.transfer;
  let isTransfer = false;
  if (tr && lp && lp.route !== route && lp.transfers < tr.maxTransfers && elapsedMs(lp, tap, eff) < tr.windowSec * 1000) {
    const fare = Math.min(tr.fareKopecks, full);
    if (!chosen || fare < chosen.fare || (fare === chosen.fare && chosen.quota)) {
      chosen = { fare, reason: 'transfer', benefit: null };
      isTransfer = true;
    }
  }
  if (!chosen) {
    if (exhaustedDeny) {
      flags.push(`quota:${exhaustedDeny}`);
      return out('deny', 'quota-exhausted', 0, null);
    }
    if (exhaustedFull) flags.push(`quota:${exhaustedFull}`);
    chosen = { fare: full, reason: exhaustedFull ? 'quota-exhausted' : 'full-fare', benefit: null };
    if (!view.transit) flags.push('unknown-card');
  }

  let fare = chosen.fare;
  let reason = chosen.reason;
  const dayKey = counterKey('fare', lt.date);
  if (tariff.dailyCapKopecks !== undefined && fare > 0) {
    const spent = view.counters[dayKey] ?? 0;
    const left = Math.max(0, tariff.dailyCapKopecks - spent);
    if (fare > left) {
      fare = left;
      reason = 'capped';
    }
  }
  if (fare > 0) flags.push('deferred-charge');

  const add: CounterAdd[] = [];
  if (chosen.quota) add.push(chosen.quota);
  if (fare > 0) add.push({ name: 'fare', period: lt.date, by: fare });
  const marks: TokenMarks = { ...base, lastRide: { ...now, route, vehicle } };
  if (isTransfer && lp) marks.lastPaid = { ...lp, transfers: lp.transfers + 1 };
  else if (fare > 0) marks.lastPaid = { ...now, route, transfers: 0 };
  return out('allow', reason, fare, chosen.benefit, add, marks);
}
