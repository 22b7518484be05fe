/// <reference lib="dom" />
import type { DebtsAnswer } from '../../../../protocol/cabinet-api.js';
import { api } from '../../../console/web/api.js';
import { h, rub } from '../../../console/web/dom.js';
import { both, tc } from '../i18n/index.js';
import type { CabinetContext } from '../main.js';
import { fmtDay } from '../shell.js';

/** Debts: full fares whose deferred charge was declined, and how to pay each. */
export async function debtsPage({ main }: CabinetContext): Promise<void> {
  const box = h('section', { class: 'card', 'data-test': 'debts' }, h('h1', {}, tc('debts.title')));
  main.append(box);
  const a = await api<DebtsAnswer>('GET', '/v1/cabinet/debts');
  const cards = new Set(a.debts.map((d) => d.card));
  box.append(
    a.debts.length === 0
      ? h('p', { 'data-test': 'no-debts' }, tc('debts.none'))
      : h(
          'ul',
          { class: 'items' },
          a.debts.map((d) =>
            h(
              'li',
              { 'data-test': 'debt' },
              h('strong', {}, `${fmtDay(d.serviceDay)} — ${rub(d.amountKopecks)} ₽`),
              // which card, once the holder has debts on more than one (a replaced card's stay theirs)
              cards.size > 1 ? h('p', { class: 'muted small', 'data-test': 'debt-card' }, `${tc('debts.card')}: ${d.card}`) : null,
              h('p', { class: 'muted small' }, `${tc('debts.status')}: ${d.status === 'declined' ? tc('debts.declined') : d.status}`),
              h('p', {}, `${tc('debts.how')}: `, both(d.howToPay)),
            ),
          ),
        ),
  );
}
