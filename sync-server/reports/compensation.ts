import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { ReportDoc, Row } from '../../protocol/reports.js';
import type { Db } from '../registry.js';
import { publishedTariff } from '../settlement/engine.js';
import { carrierOn, carriers, routeAssignments } from './carriers.js';
import { bi, col, cmp, monthPeriod, type BuildOptions } from './common.js';

/**
 * Carrier compensation for one month (service days of the month): for each carrier × route × benefit
 * category, the benefit trips as the back office settled them, their full-fare value (the route's full
 * fare in the published tariff), the amount the passengers paid (settled fares) and the compensation,
 * the revenue forgone (full − paid). A trip is a bus tap settled with reason `benefit`; its category is
 * the one the device journaled. The route's carrier is the one in force on the trip's service day.
 *
 * Left out, and counted by reason: no route on the tap, a route the tariff or the registry does not
 * know (or one no carrier runs that day), a duplicate (a repeat tap on the same vehicle, not charged),
 * an entry timed out of range, and one not settled yet.
 */
export interface CompensationParams {
  month?: string | undefined;
  carrier?: string | undefined;
}

const LEFT_OUT: Record<string, [string, string]> = {
  'no-route': ['нет маршрута в записи', 'no route on the tap'],
  'unknown-route': ['маршрут неизвестен (нет в тарифе)', 'unknown route (not in the tariff)'],
  'no-carrier': ['маршрут не закреплён за перевозчиком на эту дату', 'no carrier runs the route on that day'],
  duplicate: ['повторное прикладывание (дубликат)', 'duplicate (repeat tap on the same vehicle)'],
  'time-out-of-range': ['время записи вне допустимого диапазона', 'entry time out of range'],
  'not-settled': ['ещё не рассчитано', 'not settled yet'],
};

interface Group {
  route: string | null;
  benefit: string | null;
  day: string;
  code: string | null;
  reason: string | null;
  n: number;
  paid: number | null;
  received: string;
}

export function buildCompensation(db: Db, p: CompensationParams, o: BuildOptions): ReportDoc {
  const period = monthPeriod(p.month, o);
  const known = carriers(db);
  if (p.carrier !== undefined && !known.has(p.carrier)) throw new RcError(ErrorCode.ServerNotFound, `no carrier "${p.carrier}"`, { carrier: p.carrier });
  const assign = routeAssignments(db);
  const tariff = publishedTariff(db);
  const rules = db.prepare("SELECT version FROM configs WHERE name = 'rules'").pluck().get() as number | undefined;
  const groups = db
    .prepare(
      `SELECT route, benefit, service_day AS day, settle_code AS code, settled_reason AS reason, count(*) AS n, CAST(sum(settled_fare) AS BIGINT) AS paid, max(received_at) AS received
       FROM journal WHERE kind = 'bus' AND service_day >= ? AND service_day <= ?
       GROUP BY service_day, route, benefit, settle_code, settled_reason`, // the order of the covering index journal_report: no sort
    )
    .all(period.from, period.to) as Group[];

  const rows = new Map<string, { carrier: string; route: string; category: string; trips: number; full: number; paid: number }>();
  const left = new Map<string, number>();
  const perDay = new Map<string, Map<string, number>>(); // route → day → benefit trips
  let entries = 0;
  let received = '';
  const leave = (why: string, n: number) => left.set(why, (left.get(why) ?? 0) + n);
  for (const g of groups) {
    entries += g.n;
    if (g.received > received) received = g.received;
    if (g.code === ErrorCode.SettlementTimeOutOfRange) leave('time-out-of-range', g.n);
    else if (g.route === null) leave('no-route', g.n);
    else if (g.code === ErrorCode.SettlementUnknownRoute || !tariff || !(g.route in tariff.routes)) leave('unknown-route', g.n);
    else if (g.reason === null) leave('not-settled', g.n);
    else if (g.reason === 'repeat-tap') leave('duplicate', g.n);
    else if (g.reason === 'benefit') {
      const carrier = carrierOn(assign, g.route, g.day);
      if (carrier === null || !known.has(carrier)) {
        leave('no-carrier', g.n);
        continue;
      }
      if (p.carrier !== undefined && carrier !== p.carrier) continue;
      const category = g.benefit ?? 'unknown';
      const key = `${carrier}\u0000${g.route}\u0000${category}`;
      const r = rows.get(key) ?? { carrier, route: g.route, category, trips: 0, full: 0, paid: 0 };
      r.trips += g.n;
      r.full += g.n * tariff.routes[g.route]!.fullFareKopecks;
      r.paid += g.paid ?? 0;
      rows.set(key, r);
      const d = perDay.get(g.route) ?? new Map<string, number>();
      d.set(g.day, (d.get(g.day) ?? 0) + g.n);
      perDay.set(g.route, d);
    }
  }

  const sorted = [...rows.values()].sort((a, b) => cmp(a.carrier, b.carrier) || cmp(a.route, b.route) || cmp(a.category, b.category));
  const money = (full: number, paid: number) => ({ full_kopecks: full, paid_kopecks: paid, compensation_kopecks: full - paid });
  const routeRows: Row[] = sorted.map((r) => ({
    carrier_id: r.carrier,
    carrier_name: known.get(r.carrier)!.name,
    inn: known.get(r.carrier)!.inn,
    route: r.route,
    category: r.category,
    trips: r.trips,
    ...money(r.full, r.paid),
  }));
  const byCarrier = new Map<string, { trips: number; full: number; paid: number }>();
  for (const r of sorted) {
    const c = byCarrier.get(r.carrier) ?? { trips: 0, full: 0, paid: 0 };
    c.trips += r.trips;
    c.full += r.full;
    c.paid += r.paid;
    byCarrier.set(r.carrier, c);
  }
  const carrierRows: Row[] = [...byCarrier.entries()].map(([id, c]) => ({
    carrier_id: id,
    carrier_name: known.get(id)!.name,
    inn: known.get(id)!.inn,
    trips: c.trips,
    ...money(c.full, c.paid),
  }));
  const sum = (k: 'trips' | 'full' | 'paid') => sorted.reduce((s, r) => s + r[k], 0);
  const total = { trips: sum('trips'), ...money(sum('full'), sum('paid')) };
  const amountCols = [
    col('trips', 'Поездки', 'Trips', 'int'),
    col('full_kopecks', 'Полная стоимость', 'Full-fare value', 'kopecks'),
    col('paid_kopecks', 'Оплачено пассажирами', 'Paid by passengers', 'kopecks'),
    col('compensation_kopecks', 'Компенсация (выпадающие доходы)', 'Compensation (revenue forgone)', 'kopecks'),
  ];
  const carrierCols = [
    col('carrier_id', 'Перевозчик', 'Carrier', 'text'),
    col('carrier_name', 'Наименование', 'Name', 'text'),
    col('inn', 'ИНН', 'INN', 'text'),
  ];
  const leftRows: Row[] = Object.keys(LEFT_OUT)
    .filter((k) => left.has(k))
    .map((k) => ({ reason: k, description: `${LEFT_OUT[k]![0]} / ${LEFT_OUT[k]![1]}`, taps: left.get(k)! }));
  const chartRoutes = [...perDay.keys()].sort(cmp);

  const notes = [
    bi('Суммы в JSON указаны в копейках; в остальных форматах — в рублях.', 'Amounts are kopecks in JSON, rubles in the other formats.'),
    tariff
      ? bi(
          `Полный тариф: опубликованный тариф версии ${tariff.version} (документ правил v${rules ?? '?'}).`,
          `Full fares: the published tariff version ${tariff.version} (rules document v${rules ?? '?'}).`,
        )
      : bi('Тариф не опубликован: поездки не могут быть оценены.', 'No tariff is published: no trip can be valued.'),
    bi('Поездка — прикладывание, рассчитанное бэк-офисом как льготное.', 'A trip is a tap the back office settled as a benefit trip.'),
  ];
  return {
    report: 'compensation',
    title: bi('Компенсация перевозчикам за льготный проезд', 'Carrier compensation for benefit trips'),
    params: { month: p.month!, ...(p.carrier !== undefined ? { carrier: p.carrier } : {}) },
    period: { from: period.from, to: period.to },
    source: { journalEntries: entries, lastReceivedAt: received, tariffVersion: tariff?.version ?? 0, rulesVersion: rules ?? 0 },
    sections: [
      {
        id: 'by-route',
        title: bi('По перевозчикам, маршрутам и категориям', 'By carrier, route and benefit category'),
        columns: [...carrierCols, col('route', 'Маршрут', 'Route', 'text'), col('category', 'Категория', 'Category', 'text'), ...amountCols],
        rows: routeRows,
        totals: { carrier_id: 'Итого / Total', ...total },
      },
      {
        id: 'by-carrier',
        title: bi('Итого по перевозчикам', 'Totals per carrier'),
        columns: [...carrierCols, ...amountCols],
        rows: carrierRows,
        totals: { carrier_id: 'Итого / Total', ...total },
      },
      {
        id: 'left-out',
        title: bi('Не учтённые прикладывания', 'Taps left out'),
        columns: [
          col('reason', 'Причина', 'Reason', 'text'),
          col('description', 'Описание', 'Description', 'text'),
          col('taps', 'Прикладывания', 'Taps', 'int'),
        ],
        rows: leftRows,
        totals: { reason: 'Итого / Total', taps: [...left.values()].reduce((s, n) => s + n, 0) },
      },
    ],
    charts: [
      {
        title: bi('Льготные поездки по дням и маршрутам', 'Benefit trips per day per route'),
        kind: 'line',
        xTitle: bi('День', 'Day'),
        yTitle: bi('Поездки', 'Trips'),
        x: period.days,
        series: chartRoutes.map((r) => ({ name: r, values: period.days.map((d) => perDay.get(r)!.get(d) ?? 0) })),
      },
    ],
    notes,
  };
}
