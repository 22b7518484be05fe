/// <reference lib="dom" />
import './style.css';
import type { MeAnswer } from '../../../protocol/cabinet-api.js';
import { ApiError, api, errorBox, setCsrf } from '../../console/web/api.js';
import { clear, h } from '../../console/web/dom.js';
import { tc, type CabinetKey } from './i18n/index.js';
import { benefitsPage } from './pages/benefits.js';
import { cardPage } from './pages/card.js';
import { childrenPage } from './pages/children.js';
import { connectPage } from './pages/connect.js';
import { debtsPage } from './pages/debts.js';
import { signInPage } from './pages/signin.js';
import { tripsPage } from './pages/trips.js';
import { header, offlineBanner, onConnectivity, registerWorker } from './shell.js';

/**
 * The cardholder's cabinet (issue 15 item 2): a mobile-first single page in plain TypeScript, bundled by esbuild
 * into dist/cabinet/ with a web app manifest and a service worker (installable; the shell opens offline). Hash
 * routes (#/card, #/connect, #/benefits, #/trips, #/children, #/children/ID, #/debts); every page calls the
 * cabinet's JSON API (protocol/cabinet-api.ts), which checks the holder's session again.
 */
export interface CabinetContext {
  me: MeAnswer;
  main: HTMLElement;
  arg: string | undefined;
  /** Fetch /me again and show the card page (after a card was connected). */
  reload(): Promise<void>;
}
type PageFn = (c: CabinetContext) => void | Promise<void>;
const TABS: { page: string; key: CabinetKey; render: PageFn }[] = [
  { page: 'card', key: 'nav.card', render: cardPage },
  { page: 'benefits', key: 'nav.benefits', render: benefitsPage },
  { page: 'trips', key: 'nav.trips', render: tripsPage },
  { page: 'children', key: 'nav.children', render: childrenPage },
  { page: 'debts', key: 'nav.debts', render: debtsPage },
];

const root = document.getElementById('app')!;
let me: MeAnswer | null = null;
let offline = !navigator.onLine;

function route(): { page: string; arg: string | undefined } {
  const [page, arg] = location.hash.replace(/^#\/?/, '').split('/');
  return { page: page || 'card', arg: arg ? decodeURIComponent(arg) : undefined };
}

async function logout(): Promise<void> {
  await api('POST', '/v1/cabinet/logout', {}).catch(() => undefined);
  me = null;
  location.hash = '';
  await render();
}

async function loadMe(): Promise<void> {
  try {
    me = await api<MeAnswer>('GET', '/v1/cabinet/me');
    setCsrf(me.csrf);
    offline = false;
  } catch (e) {
    me = null;
    if (e instanceof ApiError && e.status === 401) offline = false;
    else if (!navigator.onLine || e instanceof TypeError || (e instanceof ApiError && e.status === 0)) offline = true;
    else throw e;
  }
}

async function render(): Promise<void> {
  offline = offline || !navigator.onLine;
  const main = h('main', { class: 'page' });
  const signedIn = me !== null;
  const head = header(
    'app.title',
    'app.subtitle',
    () => void render(),
    signedIn
      ? [
          h('span', { class: 'who', 'data-test': 'holder' }, me!.holder.name),
          h('button', { type: 'button', class: 'logout', 'data-test': 'logout', onclick: () => void logout() }, tc('app.logout')),
        ]
      : [],
  );
  const { page, arg } = route();
  const nav = signedIn
    ? h(
        'nav',
        { class: 'tabs' },
        TABS.map((t) =>
          h(
            'a',
            { href: `#/${t.page}`, class: t.page === page || (page === 'connect' && t.page === 'card') ? 'active' : '', 'data-test': `tab-${t.page}` },
            tc(t.key),
          ),
        ),
      )
    : null;
  clear(root);
  root.append(...[head, offlineBanner(offline), main, nav].filter((x): x is HTMLElement => x !== null));
  if (!signedIn) {
    signInPage(main, offline);
    return;
  }
  const ctx: CabinetContext = {
    me: me!,
    main,
    arg,
    reload: async () => {
      await loadMe();
      location.hash = '#/card';
      await render();
    },
  };
  const fn = page === 'connect' ? connectPage : (TABS.find((t) => t.page === page)?.render ?? cardPage);
  try {
    await fn(ctx);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      me = null;
      return render();
    }
    main.append(errorBox(e));
  }
}

window.addEventListener('hashchange', () => void render());
onConnectivity(() => {
  offline = !navigator.onLine;
  void (offline ? render() : loadMe().then(render));
});
registerWorker();
root.append(h('p', { class: 'loading' }, tc('app.loading')));
void loadMe()
  .catch((e: unknown) => root.append(errorBox(e)))
  .then(render);
