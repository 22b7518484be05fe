import { schoolStopped } from './school.js';
import { effectiveTime, isExpired, localTime, mark } from './time.js';
import type { Decision, PartnerContext, Reason, Tap, TokenMarks, View } from './types.js';

const NOT_RESIDENT = { ru: 'Не карта жителя', en: 'Not a resident card' };

/**
 * Partner's resident check (a shop, museum or theatre; issue 14 item 3), offline on the transit list:
 *  1. a card stop-listed as lost, stolen or fraud → deny `stop-list` («Карта заблокирована»)
 *  2. not in the transit list (not connected) → deny `not-resident` («Не карта жителя»)
 *  3. expired (the card's expiry, else the list's) → deny `card-expired` («Не карта жителя»)
 *  4. else allow `resident` with the discount of the partner's category: the highest `byBenefit`
 *     percent among the card's benefits valid today (benefit: that category), else the category's
 *     `discountPercent` (benefit null). Shown as «Карта жителя: скидка N%»; flag `discount:<n>`.
 * No fare, no counters: the partner charges the customer itself.
 */
export function decidePartner(tap: Tap, view: View, cfg: PartnerContext): Decision {
  const eff = effectiveTime(tap, view.marks);
  const lt = localTime(eff, cfg.device.timeZone);
  const flags: string[] = [`partner:${cfg.device.partnerId}`];
  if (tap.wallTime < eff - 60_000) flags.push('clock-behind');
  const marks: TokenMarks = { ...view.marks, anchor: mark(tap, eff) };
  const out = (result: 'allow' | 'deny', reason: Reason, show: { ru: string; en: string }, benefit: string | null = null, percent?: number): Decision => ({
    kind: 'partner',
    result,
    reason,
    fareKopecks: 0,
    benefit,
    display: show,
    counterDelta: { add: [], marks },
    effectiveTime: eff,
    flags: percent === undefined ? flags : [...flags, `discount:${percent}`],
    ...(percent === undefined ? {} : { discountPercent: percent }),
  });

  if (schoolStopped(view.stop)) return out('deny', 'stop-list', { ru: 'Карта заблокирована', en: 'Card blocked' });
  const entry = view.transit;
  if (!entry) return out('deny', 'not-resident', NOT_RESIDENT);
  if (isExpired(tap.card.expiry ?? entry.cardExpiry, lt)) return out('deny', 'card-expired', NOT_RESIDENT);
  const rule = cfg.partners.categories[cfg.device.partnerCategory];
  let percent = rule?.discountPercent ?? 0;
  let benefit: string | null = null;
  for (const b of entry.benefits) {
    const p = rule?.byBenefit[b.category];
    if (p === undefined || lt.date < b.validFrom || lt.date > b.validTo) continue;
    if (benefit === null || p > percent) [percent, benefit] = [p, b.category];
  }
  return out('allow', 'resident', { ru: `Карта жителя: скидка ${percent}%`, en: `Resident card: ${percent}% off` }, benefit, percent);
}
