/// <reference lib="dom" />
import type { StopEntry } from '../../../../protocol/console-api.js';
import { api, errorBox } from '../api.js';
import { field, h, table } from '../dom.js';
import { t } from '../i18n/index.js';
import type { PageContext } from '../main.js';

interface Added {
  masked: string;
  tokenPrefix: string;
  reason: string;
  since: string;
  version: number;
}

/** Block a lost card by its number and printed expiry (its token is PAN ‖ expiry): sent once in a POST body, the field cleared; the answer names the card masked. */
export async function stopListPage({ main }: PageContext): Promise<void> {
  const pan = h('input', { name: 'pan', inputmode: 'numeric', autocomplete: 'off', 'data-test': 'stop-pan' });
  const expiry = h('input', { name: 'expiry', class: 'short', placeholder: 'MM/YY', autocomplete: 'off', 'data-test': 'stop-expiry' });
  const reason = h('input', { name: 'reason', value: 'lost', 'data-test': 'stop-reason' });
  const out = h('div', {});
  const list = h('div', {});
  const load = async () => {
    const l = await api<{ entries: StopEntry[]; total: number }>('GET', '/v1/stoplist');
    list.replaceChildren(
      h('p', {}, `${t('stop.total')}: ${l.total}`),
      table(
        [t('stop.masked'), t('stop.tokenPrefix'), t('stop.reason'), t('stop.since'), ''],
        l.entries.map((e) => [
          e.masked ?? '—',
          h('code', {}, `${e.tokenPrefix}…`),
          e.reason,
          e.since,
          h(
            'button',
            {
              type: 'button',
              'data-test': 'stop-remove',
              'data-token': e.tokenPrefix,
              onclick: () =>
                void api('POST', '/v1/stoplist/remove', { token: e.token })
                  .then(load)
                  .catch((err: unknown) => out.replaceChildren(errorBox(err))),
            },
            t('stop.remove'),
          ),
        ]),
        { 'data-test': 'stoplist' },
      ),
    );
  };
  const form = h(
    'form',
    { class: 'card', autocomplete: 'off' },
    field(t('stop.pan'), pan),
    field(t('stop.expiry'), expiry),
    field(t('stop.reason'), reason),
    h('button', { type: 'submit', class: 'danger', 'data-test': 'stop-add' }, t('stop.add')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = { pan: pan.value, ...(expiry.value ? { expiry: expiry.value } : {}), reason: reason.value || 'lost' };
    pan.value = ''; // the number leaves the page with this request and is not kept in it
    api<Added>('POST', '/v1/stoplist', body)
      .then(async (a) => {
        out.replaceChildren(
          h(
            'p',
            { class: 'ok', 'data-test': 'stop-added' },
            `${t('stop.added')}: `,
            h('b', {}, a.masked),
            ` · ${t('stop.tokenPrefix')} `,
            h('code', {}, `${a.tokenPrefix}…`),
          ),
        );
        await load();
      })
      .catch((err: unknown) => out.replaceChildren(errorBox(err)));
  });
  main.append(h('h2', {}, t('nav.stoplist')), form, out, list);
  await load();
}
