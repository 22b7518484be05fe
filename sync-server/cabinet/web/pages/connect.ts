/// <reference lib="dom" />
import type { CardAnswer } from '../../../../protocol/cabinet-api.js';
import { luhnOk } from '../../../../protocol/pan.js';
import { api, errorBox } from '../../../console/web/api.js';
import { field, h } from '../../../console/web/dom.js';
import { tc, type CabinetKey } from '../i18n/index.js';
import type { CabinetContext } from '../main.js';

/**
 * Connect or replace the card: the number and the expiry printed on it. The page hints at a typo (Luhn) but the
 * server decides. The number goes in the POST body only: never a URL, localStorage or the service worker's cache;
 * the field is emptied as soon as it is sent.
 */
export function connectPage(ctx: CabinetContext): void {
  const replacing = ctx.me.card !== null;
  const pan = h('input', {
    name: 'pan',
    inputmode: 'numeric',
    autocomplete: 'off',
    maxlength: 23,
    required: true,
    'data-test': 'pan',
    placeholder: '2200 0000 0000 0000',
  });
  const expiry = h('input', {
    name: 'expiry',
    inputmode: 'numeric',
    autocomplete: 'off',
    maxlength: 7,
    required: true,
    'data-test': 'expiry',
    placeholder: '12/29',
  });
  const hint = h('p', { class: 'hint', 'data-test': 'luhn', 'aria-live': 'polite' });
  const out = h('div', { 'data-test': 'connect-result' });
  const button = h('button', { type: 'submit', class: 'button primary', 'data-test': 'submit' }, tc('connect.submit'));
  pan.addEventListener('input', () => {
    const digits = pan.value.replace(/[\s-]/g, '');
    hint.textContent = digits.length < 16 ? '' : /^\d+$/.test(digits) && luhnOk(digits) ? tc('connect.luhn.ok') : tc('connect.luhn.bad');
    hint.className = `hint ${hint.textContent === tc('connect.luhn.bad') ? 'bad' : 'ok'}`;
  });
  expiry.addEventListener('input', () => {
    if (/^\d{2}$/.test(expiry.value)) expiry.value = `${expiry.value}/`;
  });
  // method=post without JavaScript would still never put the number in a URL
  const form = h(
    'form',
    { method: 'post', action: '/v1/cabinet/card', 'data-test': 'connect-form', autocomplete: 'off' },
    field(tc('connect.pan'), pan),
    hint,
    field(tc('connect.expiry'), expiry),
    replacing ? h('p', { class: 'notice' }, tc('connect.replace.note')) : null,
    button,
    h('p', { class: 'muted small' }, tc('connect.privacy')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = { pan: pan.value, expiry: expiry.value };
    pan.value = '';
    hint.textContent = '';
    out.replaceChildren();
    button.disabled = true;
    void api<CardAnswer>('POST', '/v1/cabinet/card', body)
      .then((a) => {
        expiry.value = '';
        out.append(
          h(
            'div',
            { class: 'done', role: 'status', 'data-test': 'connected', 'data-status': a.result.status },
            h('strong', {}, tc(`connect.done.${a.result.status}` as CabinetKey)),
            h('p', {}, a.card.masked),
            a.result.previousMasked ? h('p', {}, `${tc('connect.done.previous')}: `, h('span', { 'data-test': 'previous' }, a.result.previousMasked)) : null,
            a.result.effectiveListVersion !== undefined
              ? h('p', { class: 'muted small' }, `${tc('connect.done.version')}: ${a.result.effectiveListVersion}`)
              : null,
            h('a', { class: 'button', href: '#/card', onclick: (ev: Event) => (ev.preventDefault(), void ctx.reload()) }, tc('card.title')),
          ),
        );
      })
      .catch((err: unknown) => out.append(errorBox(err)))
      .finally(() => (button.disabled = false));
  });
  ctx.main.append(h('section', { class: 'card' }, h('h1', {}, tc(replacing ? 'connect.replace.title' : 'connect.title')), form, out));
}
