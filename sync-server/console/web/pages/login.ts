/// <reference lib="dom" />
import { api, errorBox } from '../api.js';
import { field, h } from '../dom.js';
import { t } from '../i18n/index.js';
import type { SessionAnswer } from '../session.js';

/** Sign in (POST /v1/session): a coded error (bad credentials, rate limited) is shown with its help. */
export function loginPage(done: (s: SessionAnswer) => Promise<void>): HTMLElement {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const pw = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const out = h('div', {});
  const form = h(
    'form',
    { class: 'card login', 'data-test': 'login' },
    h('h2', {}, t('login.title')),
    field(t('login.user'), user),
    field(t('login.password'), pw),
    h('button', { type: 'submit' }, t('login.submit')),
    out,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    out.replaceChildren();
    api<SessionAnswer>('POST', '/v1/session', { username: user.value, password: pw.value })
      .then(async (s) => {
        pw.value = '';
        await done(s);
      })
      .catch((err: unknown) => out.append(errorBox(err)));
  });
  return h('main', {}, form);
}
