/// <reference lib="dom" />
import type { Trip, TripsAnswer } from '../../../../protocol/cabinet-api.js';
import { api } from '../../../console/web/api.js';
import { h, rub, table } from '../../../console/web/dom.js';
import { currentLang } from '../../../console/web/i18n/index.js';
import { tc } from '../i18n/index.js';
import type { CabinetContext } from '../main.js';
import { isoDay } from '../shell.js';

/** The trips of the last 12 months from the settled journal, newest month first, with each month's total. */
export async function tripsPage({ main }: CabinetContext): Promise<void> {
  const box = h('section', { class: 'card', 'data-test': 'trips' }, h('h1', {}, tc('trips.title')), h('p', { class: 'muted' }, tc('trips.period')));
  main.append(box);
  const to = new Date();
  const from = new Date(to.getFullYear() - 1, to.getMonth(), to.getDate() + 1);
  const a = await api<TripsAnswer>('GET', `/v1/cabinet/trips?from=${isoDay(from)}&to=${isoDay(to)}`);
  if (a.trips.length === 0) {
    box.append(h('p', { 'data-test': 'no-trips' }, tc('trips.none')));
    return;
  }
  const locale = currentLang() === 'ru' ? 'ru-RU' : 'en-GB';
  const months = new Map<string, Trip[]>();
  for (const t of [...a.trips].sort((x, y) => y.time.localeCompare(x.time))) {
    const d = new Date(t.time);
    const key = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
    months.set(key, [...(months.get(key) ?? []), t]);
  }
  for (const [key, trips] of months) {
    const title = new Date(`${key}-15T12:00:00`).toLocaleDateString(locale, { month: 'long', year: 'numeric' });
    const total = trips.reduce((s, t) => s + t.fareKopecks, 0);
    box.append(
      h(
        'div',
        { class: 'month', 'data-test': 'month', 'data-month': key },
        h('h2', {}, title, h('span', { class: 'muted small' }, ` · ${trips.length} ${tc('trips.count')} · ${tc('trips.month.total')}: ${rub(total)} ₽`)),
        table(
          [tc('trips.time'), tc('trips.route'), tc('trips.fare'), tc('trips.benefit')],
          trips.map((t) => [
            new Date(t.time).toLocaleString(locale, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' }),
            t.route ?? '—',
            rub(t.fareKopecks),
            t.benefit ?? '—',
          ]),
          { 'data-test': 'trip-rows' },
        ),
      ),
    );
  }
}
