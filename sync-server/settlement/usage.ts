import type { BenefitCategory, TransitEntry } from '../../protocol/lists.js';
import { NO_ROUTE, type UsageCard } from '../../protocol/wire/usage-codec.js';
import type { Tariff } from '../../protocol/rules-schema.js';
import { localTime, type TokenMarks } from './core.js';
import type { SettlementOptions } from './days.js';
import { replayCard, type JournalRow } from './engine.js';

/**
 * Fleet usage (phase 2 of issue 10, not published yet): for the cards active in
 * the current windows, the counters and marks a device needs to decide as if it
 * had seen the whole fleet's taps — quota used this month (or day), fares charged
 * today, the last paid tap (transfer window) and the last ride (repeat window).
 * Pure: the same rows, entries, tariff and instant give the same usage.
 */
export interface CardUsage {
  token: string;
  /** Counter values of the current periods only, keyed like a device's (`quota:pensioner@2026-11`, `fare@2026-11-24`). */
  counters: Record<string, number>;
  marks: Pick<TokenMarks, 'lastPaid' | 'lastRide'>;
}

/**
 * `rows`: the journal rows of the current month (and the day before it), any order, any cards.
 * Cards with nothing current (no counter of this month or day, no mark inside its window) are left out.
 */
export function fleetUsage(
  rows: readonly JournalRow[],
  transitOf: (token: string) => TransitEntry | null,
  tariff: Tariff,
  o: SettlementOptions,
  nowMs: number,
): CardUsage[] {
  const lt = localTime(nowMs, o.timeZone);
  const byToken = new Map<string, JournalRow[]>();
  for (const r of rows) {
    const list = byToken.get(r.token);
    if (list) list.push(r);
    else byToken.set(r.token, [r]);
  }
  const out: CardUsage[] = [];
  for (const token of [...byToken.keys()].sort()) {
    const { counters, marks } = replayCard(token, byToken.get(token)!, transitOf(token), tariff, o);
    const current: Record<string, number> = {};
    for (const [k, v] of Object.entries(counters)) {
      const period = k.slice(k.lastIndexOf('@') + 1);
      if (period === lt.month || period === lt.date) current[k] = v;
    }
    const keep: CardUsage['marks'] = {};
    const within = (effMs: number, sec: number) => effMs <= nowMs && nowMs - effMs < sec * 1000;
    if (marks.lastPaid && tariff.transfer && within(marks.lastPaid.effMs, tariff.transfer.windowSec)) keep.lastPaid = marks.lastPaid;
    if (marks.lastRide && within(marks.lastRide.effMs, tariff.repeatWindowSec)) keep.lastRide = marks.lastRide;
    if (Object.keys(current).length > 0 || keep.lastPaid || keep.lastRide) out.push({ token, counters: current, marks: keep });
  }
  return out;
}

/**
 * The wire form of fleet usage (protocol/wire/usage-codec.ts): one record per card.
 * A card counted under two quota categories this period (its benefits changed) carries the one with more trips.
 */
export function usageCards(usage: readonly CardUsage[], tariff: Tariff, date: string): UsageCard[] {
  const routes = Object.keys(tariff.routes).sort();
  const month = date.slice(0, 7);
  return usage.map((u) => {
    let quotaCategory: BenefitCategory | null = null;
    let quotaUsed = 0;
    for (const [k, v] of Object.entries(u.counters)) {
      if (!k.startsWith('quota:')) continue;
      const at = k.lastIndexOf('@');
      const period = k.slice(at + 1);
      if (period !== month && period !== date) continue;
      if (v > quotaUsed) {
        quotaUsed = v;
        quotaCategory = k.slice('quota:'.length, at) as BenefitCategory;
      }
    }
    const lp = u.marks.lastPaid;
    const ri = lp ? routes.indexOf(lp.route) : -1;
    return {
      token: u.token,
      quotaCategory,
      quotaUsed,
      fareToday: u.counters[`fare@${date}`] ?? 0,
      lastPaid: lp ? { effMs: lp.effMs, routeIndex: ri < 0 ? NO_ROUTE : ri, transfers: lp.transfers } : null,
    };
  });
}
