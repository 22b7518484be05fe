import type { Tariff } from '../../protocol/rules-schema.js';
import type { CounterAdd, TokenMarks, View } from '../../protocol/rules/types.js';
import type { UsageCard, UsageDay } from '../../protocol/wire/usage-codec.js';

/**
 * Fleet usage merged into one token's view (issue 10 item 4), pure.
 *
 * The server publishes, per card, what every device's journal says up to a
 * watermark per device (the highest seq of that device it counted). This
 * device adds its own taps the server has not counted yet (seq above its
 * watermark), so nothing is counted twice or missed:
 *
 *   counter = max(local, fleet + own additions with seq > watermark)
 *
 * `local` already holds every own tap, so the max only matters when the
 * server knows less than the device (a server restored from an older copy):
 * the device never counts fewer trips than it saw itself. Counters the fleet
 * record does not carry stay local.
 *
 * Marks: the last paid tap is the later of the local and the fleet one (by
 * effective time; on a tie the one with more transfers). The fleet mark has no
 * monotonic clock of this device (bootId 'fleet'), so the rules measure its
 * window on effective time. The last ride (repeat tap) stays local: a repeat is
 * the same card on the same vehicle, which only this vehicle's validator sees
 * in time to matter.
 */
export interface UsageContext {
  /** The tariff's route names, sorted: the record's route index points here. */
  routes: readonly string[];
  /** Per benefit category with a quota: its period. */
  quotaPer: Readonly<Record<string, 'month' | 'day'>>;
}

export function usageContext(tariff: Tariff): UsageContext {
  const quotaPer: Record<string, 'month' | 'day'> = {};
  for (const [cat, rule] of Object.entries(tariff.benefits)) if (rule.quota) quotaPer[cat] = rule.quota.per;
  return { routes: Object.keys(tariff.routes).sort(), quotaPer };
}

/** The fleet's counters and marks for one card, keyed like the device's counters. */
export function fleetView(card: UsageCard, day: UsageDay, ctx: UsageContext): Pick<View, 'counters' | 'marks'> {
  const counters: Record<string, number> = {};
  if (card.quotaCategory !== null) {
    const per = ctx.quotaPer[card.quotaCategory] ?? 'month';
    counters[`quota:${card.quotaCategory}@${per === 'month' ? day.date.slice(0, 7) : day.date}`] = card.quotaUsed;
  }
  if (card.fareToday > 0) counters[`fare@${day.date}`] = card.fareToday;
  const marks: TokenMarks = {};
  if (card.lastPaid) {
    const route = ctx.routes[card.lastPaid.routeIndex] ?? '#unknown-route';
    marks.lastPaid = { effMs: card.lastPaid.effMs, monoMs: 0, bootId: 'fleet', route, transfers: card.lastPaid.transfers };
  }
  return { counters, marks };
}

/**
 * `local`: the token's own counters and marks; `fleet`: the published card record
 * (null: the card is not in the fleet usage, or no usage scope held);
 * `unseen`: the counter additions of this device's taps with seq above the watermark the fleet usage carries for it.
 */
export function mergeUsage(
  local: Pick<View, 'counters' | 'marks'>,
  fleet: { card: UsageCard; day: UsageDay } | null,
  unseen: readonly CounterAdd[],
  ctx: UsageContext,
): Pick<View, 'counters' | 'marks'> {
  if (!fleet) return local;
  const f = fleetView(fleet.card, fleet.day, ctx);
  const counters = { ...local.counters };
  for (const [key, value] of Object.entries(f.counters)) {
    let own = 0;
    for (const a of unseen) if (`${a.name}@${a.period}` === key) own += a.by;
    counters[key] = Math.max(local.counters[key] ?? 0, value + own);
  }
  const marks: TokenMarks = { ...local.marks };
  const lp = local.marks.lastPaid;
  const fp = f.marks.lastPaid;
  if (fp && (!lp || fp.effMs > lp.effMs || (fp.effMs === lp.effMs && fp.transfers > lp.transfers))) marks.lastPaid = fp;
  return { counters, marks };
}
