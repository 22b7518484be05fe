/// <reference lib="dom" />
import type { JournalSearchAnswer } from '../../../../protocol/console-api.js';
import { api, errorBox } from '../api.js';
import { field, fmtTime, h, rub, table } from '../dom.js';
import { t } from '../i18n/index.js';
import type { PageContext } from '../main.js';

/** Journal search: filters, or a card by its number (in the POST body, never in a URL). */
export function journalPage({ main }: PageContext): void {
  const input = (name: string, attrs: Record<string, string> = {}) => h('input', { name, 'data-test': `j-${name}`, ...attrs });
  const device = input('device');
  const route = input('route', { class: 'short' });
  const from = input('from', { type: 'date' });
  const to = input('to', { type: 'date' });
  const result = h(
    'select',
    { name: 'result' },
    ['', 'allow', 'deny'].map((r) => h('option', { value: r }, r || '—')),
  );
  const pan = input('pan', { inputmode: 'numeric', autocomplete: 'off' });
  const expiry = input('expiry', { class: 'short', placeholder: 'MM/YY', autocomplete: 'off' });
  const out = h('div', {});
  const form = h(
    'form',
    { class: 'card', autocomplete: 'off' },
    field(t('col.device'), device),
    field(t('col.route'), route),
    field(t('journal.from'), from),
    field(t('journal.to'), to),
    field(t('col.result'), result),
    field(t('journal.pan'), pan),
    field(t('stop.expiry'), expiry),
    h('button', { type: 'submit', 'data-test': 'j-search' }, t('common.search')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body: Record<string, string> = {};
    for (const [k, el] of Object.entries({ device, route, from, to, result, pan, expiry })) if (el.value) body[k] = el.value;
    pan.value = '';
    api<JournalSearchAnswer>('POST', '/v1/journal/search', body)
      .then((a) =>
        out.replaceChildren(
          a.card ? h('p', { 'data-test': 'j-card' }, `${t('journal.card')}: `, h('b', {}, a.card.masked), ` · ${a.card.tokenPrefix}…`) : '',
          a.entries.length
            ? table(
                [t('col.time'), t('col.device'), t('col.seq'), t('col.route'), t('col.token'), t('col.result'), t('col.reason'), t('col.fare')],
                a.entries.map((j) => [
                  fmtTime(j.effectiveTime),
                  j.device,
                  j.seq,
                  j.route ?? '—',
                  j.token ? `${j.token.slice(0, 8)}…` : '—',
                  j.result,
                  j.reason,
                  rub(j.fareKopecks),
                ]),
                { 'data-test': 'j-results' },
              )
            : h('p', { 'data-test': 'j-none' }, t('common.none')),
        ),
      )
      .catch((err: unknown) => out.replaceChildren(errorBox(err)));
  });
  main.append(h('h2', {}, t('nav.journal')), form, out);
}
