import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { ReportDoc, Row } from '../../protocol/reports.js';
import { allPartners } from '../partners.js';
import type { Db } from '../registry.js';
import { bi, cmp, col, monthPeriod, type BuildOptions } from './common.js';

/**
 * Partners' resident checks of one month (issue 14 item 3), from the partner devices' journal entries:
 * per partner the visits (a resident card checked, the discount shown), the refusals (not a resident card,
 * expired, blocked), the distinct cards and the discounts given (how many visits at each percent, the
 * average); per partner and day the same counts. The partner is the one the device journaled
 * (flag `partner:<id>`), named from the imported partners. Cards appear by no identity at all.
 */
interface Entry {
  token: string;
  day: string;
  result: string;
  reason: string;
  benefit: string | null;
  flags: string;
}

const flag = (flags: string[], name: string): string | null => flags.find((f) => f.startsWith(`${name}:`))?.slice(name.length + 1) ?? null;

export function buildPartners(db: Db, p: { month?: string | undefined; partner?: string | undefined }, o: BuildOptions): ReportDoc {
  const period = monthPeriod(p.month, o);
  const partners = new Map(allPartners(db).map((x) => [x.id, x]));
  if (p.partner !== undefined && !partners.has(p.partner)) throw new RcError(ErrorCode.ServerNotFound, `no partner "${p.partner}"`, { partner: p.partner });
  const rows = db
    .prepare(
      `SELECT token, service_day AS day, result, reason, benefit, flags FROM journal
       WHERE kind = 'partner' AND result != 'event' AND service_day >= ? AND service_day <= ? ORDER BY service_day, device, seq`,
    )
    .all(period.from, period.to) as Entry[];
  const received = (db.prepare("SELECT max(received_at) FROM journal WHERE kind = 'partner'").pluck().get() as string | null) ?? '';

  interface Acc {
    visits: number;
    refused: number;
    cards: Set<string>;
    discountSum: number;
  }
  const acc = (): Acc => ({ visits: 0, refused: 0, cards: new Set(), discountSum: 0 });
  const byPartner = new Map<string, Acc>();
  const byDay = new Map<string, Acc>(); // partner \t day
  const byDiscount = new Map<string, number>(); // partner \t percent \t benefit
  for (const r of rows) {
    const flags = JSON.parse(r.flags || '[]') as string[];
    const partner = flag(flags, 'partner') ?? '-';
    if (p.partner !== undefined && partner !== p.partner) continue;
    const percent = Number(flag(flags, 'discount') ?? 0);
    for (const [map, key] of [
      [byPartner, partner],
      [byDay, `${partner}\t${r.day}`],
    ] as const) {
      let a = map.get(key);
      if (!a) map.set(key, (a = acc()));
      if (r.result === 'allow') {
        a.visits++;
        a.discountSum += percent;
        a.cards.add(r.token);
      } else a.refused++;
    }
    if (r.result === 'allow') {
      const k = `${partner}\t${String(percent).padStart(3, '0')}\t${r.benefit ?? ''}`;
      byDiscount.set(k, (byDiscount.get(k) ?? 0) + 1);
    }
  }
  // a partner asked for, or imported, shows even without visits
  const ids = new Set([...byPartner.keys(), ...(p.partner !== undefined ? [p.partner] : [...partners.keys()])]);
  const partnerRows: Row[] = [...ids].sort(cmp).map((id) => {
    const a = byPartner.get(id) ?? acc();
    const x = partners.get(id);
    return {
      partner_id: id,
      name: x?.name ?? '',
      category: x?.category ?? '',
      agreed_percent: x?.discountPercent ?? null,
      visits: a.visits,
      refused: a.refused,
      cards: a.cards.size,
      average_percent: a.visits ? Math.round((a.discountSum / a.visits) * 10) / 10 : null,
    };
  });
  const dayRows: Row[] = [...byDay.entries()]
    .sort((a, b) => cmp(a[0], b[0]))
    .map(([k, a]) => {
      const [partner_id, day] = k.split('\t') as [string, string];
      return { partner_id, day, visits: a.visits, refused: a.refused, cards: a.cards.size };
    });
  const discountRows: Row[] = [...byDiscount.entries()]
    .sort((a, b) => cmp(a[0], b[0]))
    .map(([k, visits]) => {
      const [partner_id, percent, benefit] = k.split('\t') as [string, string, string];
      return { partner_id, percent: Number(percent), benefit, visits };
    });
  const sum = (list: Row[], key: string) => list.reduce((s, r) => s + ((r[key] as number | null) ?? 0), 0);
  const n = (key: string, ru: string, en: string) => col(key, ru, en, 'int');
  const partnerCol = col('partner_id', 'Партнёр', 'Partner', 'text');
  return {
    report: 'partners',
    title: bi('Партнёры: проверки карты жителя и скидки', 'Partners: resident checks and discounts'),
    params: { month: p.month!, ...(p.partner !== undefined ? { partner: p.partner } : {}) },
    period: { from: period.from, to: period.to },
    source: { journalEntries: rows.length, lastReceivedAt: received, partners: partners.size },
    sections: [
      {
        id: 'by-partner',
        title: bi('По партнёрам', 'By partner'),
        columns: [
          partnerCol,
          col('name', 'Название', 'Name', 'text'),
          col('category', 'Категория', 'Category', 'text'),
          col('agreed_percent', 'Скидка по договору', 'Agreed discount', 'percent'),
          n('visits', 'Посещения (скидка дана)', 'Visits (discount given)'),
          n('refused', 'Не карта жителя', 'Not a resident card'),
          n('cards', 'Разных карт', 'Distinct cards'),
          col('average_percent', 'Средняя скидка', 'Average discount', 'percent'),
        ],
        rows: partnerRows,
        totals: { partner_id: 'Итого / Total', visits: sum(partnerRows, 'visits'), refused: sum(partnerRows, 'refused') },
      },
      {
        id: 'discounts',
        title: bi('Скидки по размеру и льготе', 'Discounts given, by percent and benefit'),
        columns: [partnerCol, col('percent', 'Скидка', 'Discount', 'percent'), col('benefit', 'Льгота', 'Benefit', 'text'), n('visits', 'Посещения', 'Visits')],
        rows: discountRows,
        totals: { partner_id: 'Итого / Total', visits: sum(discountRows, 'visits') },
      },
      {
        id: 'by-day',
        title: bi('По дням', 'By day'),
        columns: [
          partnerCol,
          col('day', 'День', 'Day', 'date'),
          n('visits', 'Посещения', 'Visits'),
          n('refused', 'Не карта жителя', 'Not a resident card'),
          n('cards', 'Разных карт', 'Distinct cards'),
        ],
        rows: dayRows,
        totals: { partner_id: 'Итого / Total', visits: sum(dayRows, 'visits'), refused: sum(dayRows, 'refused') },
      },
    ],
    charts: [],
    notes: [
      bi(
        'Посещение — проверка подключённой действующей карты жителя на устройстве партнёра; скидку (в процентах) по опубликованным правилам партнёров показывает устройство, оплату принимает партнёр.',
        "A visit is a check of a connected, valid resident card on the partner's device; the device shows the discount (percent) of the published partner rules, the partner takes the payment.",
      ),
      bi(
        '«Не карта жителя»: карта не подключена, срок истёк или карта заблокирована. Проверки партнёров не входят в расчёт проезда.',
        '"Not a resident card": not connected, expired or blocked. Partner checks are left out of fare settlement.',
      ),
    ],
  };
}
