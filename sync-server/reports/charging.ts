import type { ReportDoc, Row } from '../../protocol/reports.js';
import type { Db } from '../registry.js';
import { bi, col, monthPeriod, type BuildOptions } from './common.js';

/**
 * Aggregated charging of one month (charges of its service days): how many charges and how much in each
 * status (pending, charged, declined, repaid, and `v1`: charged tap by tap before aggregation), per day,
 * the outstanding debt (declined, not repaid) per card, and the cards on the stop-list for debt
 * (reason charge-declined) with all they owe. Cards appear by token and person_id, never a PAN.
 */
const STATUSES = ['pending', 'charged', 'declined', 'repaid', 'v1'] as const;

export function buildCharging(db: Db, p: { month?: string | undefined }, o: BuildOptions): ReportDoc {
  const period = monthPeriod(p.month, o);
  const range = [period.from, period.to];
  const byStatus = db
    .prepare(
      `SELECT status, count(*) AS charges, CAST(sum(taps) AS BIGINT) AS taps, CAST(sum(amount) AS BIGINT) AS amount FROM charges WHERE service_day >= ? AND service_day <= ? GROUP BY status`,
    )
    .all(...range) as { status: string; charges: number; taps: number; amount: number }[];
  const st = new Map(byStatus.map((r) => [r.status, r]));
  const statusRows: Row[] = STATUSES.filter((s) => st.has(s)).map((s) => ({
    status: s,
    charges: st.get(s)!.charges,
    taps: st.get(s)!.taps,
    amount_kopecks: st.get(s)!.amount,
  }));
  const sumOf = (k: 'charges' | 'taps' | 'amount') => byStatus.reduce((s, r) => s + r[k], 0);

  const days = db
    .prepare(
      `SELECT service_day AS day,
         count(CASE WHEN status IN ('charged','v1') THEN 1 END) AS charged_n, CAST(sum(CASE WHEN status IN ('charged','v1') THEN amount ELSE 0 END) AS BIGINT) AS charged,
         count(CASE WHEN status = 'declined' THEN 1 END) AS declined_n, CAST(sum(CASE WHEN status = 'declined' THEN amount ELSE 0 END) AS BIGINT) AS declined,
         count(CASE WHEN status = 'repaid' THEN 1 END) AS repaid_n, CAST(sum(CASE WHEN status = 'repaid' THEN amount ELSE 0 END) AS BIGINT) AS repaid,
         count(CASE WHEN status = 'pending' THEN 1 END) AS pending_n, CAST(sum(CASE WHEN status = 'pending' THEN amount ELSE 0 END) AS BIGINT) AS pending
       FROM charges WHERE service_day >= ? AND service_day <= ? GROUP BY service_day ORDER BY service_day`,
    )
    .all(...range) as Row[];
  const dayTotal = (k: string) => days.reduce((s, r) => s + (r[k] as number), 0);

  const debt = db
    .prepare(
      `SELECT c.token, coalesce(min(k.person_id), '') AS person_id, count(*) AS charges, CAST(sum(c.amount) AS BIGINT) AS debt_kopecks,
         min(s.since) AS stop_list_since
       FROM charges c LEFT JOIN cards k ON k.token = c.token LEFT JOIN stoplist s ON s.token = c.token AND s.reason = 'charge-declined'
       WHERE c.status = 'declined' AND c.service_day >= ? AND c.service_day <= ? GROUP BY c.token ORDER BY c.token`,
    )
    .all(...range) as Row[];
  const stop = db
    .prepare(
      `SELECT s.token, coalesce(k.person_id, '') AS person_id, s.since,
         (SELECT CAST(coalesce(sum(amount), 0) AS BIGINT) FROM charges c WHERE c.token = s.token AND c.status = 'declined') AS debt_kopecks
       FROM stoplist s LEFT JOIN cards k ON k.token = s.token WHERE s.reason = 'charge-declined' ORDER BY s.token`,
    )
    .all() as Row[];
  const cardCols = [col('token', 'Токен карты', 'Card token', 'text'), col('person_id', 'ID персоны', 'Person id', 'text')];
  const n = (key: string, ru: string, en: string) => col(key, ru, en, 'int');
  const k = (key: string, ru: string, en: string) => col(key, ru, en, 'kopecks');
  return {
    report: 'charging',
    title: bi('Агрегированные списания', 'Aggregated charging'),
    params: { month: p.month! },
    period: { from: period.from, to: period.to },
    source: { charges: sumOf('charges'), stopListForDebt: stop.length },
    sections: [
      {
        id: 'by-status',
        title: bi('По статусам', 'By status'),
        columns: [
          col('status', 'Статус', 'Status', 'text'),
          n('charges', 'Списания', 'Charges'),
          n('taps', 'Поездки', 'Taps'),
          k('amount_kopecks', 'Сумма', 'Amount'),
        ],
        rows: statusRows,
        totals: { status: 'Итого / Total', charges: sumOf('charges'), taps: sumOf('taps'), amount_kopecks: sumOf('amount') },
      },
      {
        id: 'by-day',
        title: bi('По дням', 'By service day'),
        columns: [
          col('day', 'День', 'Day', 'date'),
          n('charged_n', 'Списано, шт.', 'Charged'),
          k('charged', 'Списано', 'Charged amount'),
          n('declined_n', 'Отклонено, шт.', 'Declined'),
          k('declined', 'Отклонено', 'Declined amount'),
          n('repaid_n', 'Погашено, шт.', 'Repaid'),
          k('repaid', 'Погашено', 'Repaid amount'),
          n('pending_n', 'В ожидании, шт.', 'Pending'),
          k('pending', 'В ожидании', 'Pending amount'),
        ],
        rows: days,
        totals: Object.fromEntries([
          ['day', 'Итого / Total'],
          ...['charged_n', 'charged', 'declined_n', 'declined', 'repaid_n', 'repaid', 'pending_n', 'pending'].map((x) => [x, dayTotal(x)]),
        ]),
      },
      {
        id: 'debt',
        title: bi('Непогашенная задолженность за месяц', 'Outstanding debt of the month'),
        columns: [
          ...cardCols,
          n('charges', 'Списания', 'Charges'),
          k('debt_kopecks', 'Долг', 'Debt'),
          col('stop_list_since', 'В стоп-листе с', 'On the stop-list since', 'date'),
        ],
        rows: debt,
        totals: {
          token: 'Итого / Total',
          charges: debt.reduce((s, r) => s + (r.charges as number), 0),
          debt_kopecks: debt.reduce((s, r) => s + (r.debt_kopecks as number), 0),
        },
      },
      {
        id: 'stop-list',
        title: bi('Карты в стоп-листе за долг (на момент отчёта)', 'Cards on the stop-list for debt (now)'),
        columns: [...cardCols, col('since', 'С', 'Since', 'date'), k('debt_kopecks', 'Весь долг', 'All debt')],
        rows: stop,
        totals: { token: 'Итого / Total', debt_kopecks: stop.reduce((s, r) => s + (r.debt_kopecks as number), 0) },
      },
    ],
    charts: [],
    notes: [
      bi('Суммы в JSON указаны в копейках; в остальных форматах — в рублях.', 'Amounts are kopecks in JSON, rubles in the other formats.'),
      bi('«v1»: дни, списанные по каждой поездке до агрегации, учтены как списанные.', '"v1": days charged tap by tap before aggregation count as charged.'),
      bi('Стоп-лист — текущее состояние, не на конец месяца.', 'The stop-list section is the current state, not the end of the month.'),
    ],
  };
}
