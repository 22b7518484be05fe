/// <reference lib="dom" />
import type { StaffCardAnswer } from '../../../../protocol/cabinet-api.js';
import { api, errorBox } from '../api.js';
import { field, h } from '../dom.js';
import { t } from '../i18n/index.js';
import type { PageContext } from '../main.js';

/**
 * The staff-assisted card connection (issue 15): an operator connects the card of a person who cannot use ESIA. The number
 * is sent once in a POST body and the field cleared; the answer names the card masked, and whether it replaced another.
 */
export async function holdersPage({ main }: PageContext): Promise<void> {
  const person = h('input', { name: 'person', autocomplete: 'off', 'data-test': 'holder-person' });
  const pan = h('input', { name: 'pan', inputmode: 'numeric', autocomplete: 'off', 'data-test': 'holder-pan' });
  const expiry = h('input', { name: 'expiry', class: 'short', placeholder: 'MM/YY', autocomplete: 'off', 'data-test': 'holder-expiry' });
  const out = h('div', {});
  const form = h(
    'form',
    { class: 'card', autocomplete: 'off' },
    field(t('holder.person'), person),
    field(t('holder.pan'), pan),
    field(t('holder.expiry'), expiry),
    h('button', { type: 'submit', 'data-test': 'holder-connect' }, t('holder.connect')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = { pan: pan.value, expiry: expiry.value };
    pan.value = ''; // the number leaves the page with this request and is not kept in it
    api<StaffCardAnswer>('POST', `/v1/console/holders/${encodeURIComponent(person.value.trim())}/card`, body)
      .then((a) =>
        out.replaceChildren(
          h(
            'p',
            { class: 'ok', 'data-test': 'holder-connected' },
            `${t('holder.connected')}: `,
            h('b', {}, a.masked),
            ` (${a.expiry}) · ${a.personId} · ${a.result.status}`,
            a.result.previousMasked ? ` · ${t('holder.replaced')} ${a.result.previousMasked}` : '',
          ),
        ),
      )
      .catch((err: unknown) => out.replaceChildren(errorBox(err)));
  });
  main.append(h('h2', {}, t('nav.holders')), h('p', {}, t('holder.help')), form, out);
}
