/// <reference lib="dom" />
import type { Trip, TripsAnswer } from '../../../../protocol/cabinet-api.js';
import { api } from '../../../console/web/api.js';
import { h, rub, table } from '../../../console/web/dom.js';
import { ruPlural } from '../../../portal/rule-words.js';
import { currentLang } from '../../../console/web/i18n/index.js';
import { tc } from '../i18n/index.js';
import type { CabinetContext } from '../main.js';
import { categoryLabel, fmtAt, locale, monthOf } from '../shell.js';
import { dayBefore } from './days.js';

const tripCount = (n: number) => (currentLang() === 'ru' ? `${n} ${ruPlural(n, 'поездка', 'поездки', 'поездок')}` : `${n} ${n === 1 ? 'trip' : 'trips'}`);

/**
 * The trips of the last 12 months from the settled journal, newest month first, with each month's total; the card of each
 * trip when the person has had more than one card.
 */
export async function tripsPage({ me, main }: CabinetContext): Promise<void> {
  const box = h('section', { class: 'card', 'data-test': 'trips' }, h('h1', {}, tc('trips.title')), h('p', { class: 'muted' }, tc('trips.period')));
  main.append(box);
  // the server's today, not the phone's: the range the server allows (12 months back), and the demo's day in the demo
  const a = await api<TripsAnswer>('GET', `/v1/cabinet/trips?from=${dayBefore(me.today, { years: 1, days: -1 })}&to=${me.today}`);
  if (a.trips.length === 0) {
    box.append(h('p', { 'data-test': 'no-trips' }, tc('trips.none')));
    return;
  }
  const names = new Map(me.benefits.map((b) => [b.category, b.name]));
  // a person who replaced their card sees the card of each trip
  const manyCards = new Set(a.trips.map((t) => t.card)).size > 1;
  const months = new Map<string, Trip[]>();
  for (const t of [...a.trips].sort((x, y) => y.time.localeCompare(x.time))) {
    const key = monthOf(t.time);
    months.set(key, [...(months.get(key) ?? []), t]);
  }
  for (const [key, trips] of months) {
    const title = new Date(`${key}-15T12:00:00`).toLocaleDateString(locale(), { month: 'long', year: 'numeric' });
    const total = trips.reduce((s, t) => s + t.fareKopecks, 0);
    box.append(
      h(
        'div',
        { class: 'month', 'data-test': 'month', 'data-month': key },
        h('h2', {}, title, h('span', { class: 'muted small' }, ` · ${tripCount(trips.length)} · ${tc('trips.month.total')}: ${rub(total)} ₽`)),
        table(
          [tc('trips.time'), tc('trips.route'), tc('trips.fare'), tc('trips.benefit'), ...(manyCards ? [tc('trips.card')] : [])],
          trips.map((t) => [
            fmtAt(t.time, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' }),
            t.route ?? '—',
            rub(t.fareKopecks),
            t.benefit ? categoryLabel(t.benefit, names.get(t.benefit)) : '—',
            ...(manyCards ? [h('span', { 'data-test': 'trip-card' }, t.card)] : []),
          ]),
          { 'data-test': 'trip-rows' },
        ),
      ),
    );
  }
}
