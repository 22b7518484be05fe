/// <reference lib="dom" />
import { ApiError, errorBox } from '../../../console/web/api.js';
import { h } from '../../../console/web/dom.js';
import { tc } from '../i18n/index.js';

/** Sign in: one button to the cabinet's login route (ESIA, or the plain OpenID provider); a failed sign-in comes back as ?error=CODE. */
export function signInPage(main: HTMLElement, offline: boolean): void {
  const failed = new URLSearchParams(location.search).get('error');
  main.append(
    h(
      'section',
      { class: 'card signin', 'data-test': 'signin' },
      h('h1', {}, tc('signin.title')),
      h('p', {}, tc('signin.text')),
      failed ? errorBox(new ApiError(401, failed, tc('signin.failed'))) : null,
      h(
        'a',
        {
          class: `button primary${offline ? ' disabled' : ''}`,
          href: '/v1/cabinet/login?next=/cabinet/',
          'data-test': 'login',
          'aria-disabled': offline ? 'true' : null,
        },
        tc('signin.button'),
      ),
    ),
  );
}
