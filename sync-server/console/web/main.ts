/// <reference lib="dom" />
import './style.css';
import { ApiError, api, errorBox, setCsrf } from './api.js';
import { clear, h, langSwitch } from './dom.js';
import { currentLang, setLang, t, tk, type Key } from './i18n/index.js';
import { deviceDetailPage } from './pages/device.js';
import { enrolPage } from './pages/enrol.js';
import { fleetPage } from './pages/fleet.js';
import { importsPage } from './pages/imports.js';
import { journalPage } from './pages/journal.js';
import { listsPage } from './pages/lists.js';
import { loginPage } from './pages/login.js';
import { reportsPage } from './pages/reports.js';
import { rulesPage } from './pages/rules.js';
import { stopListPage } from './pages/stoplist.js';
import { holdersPage } from './pages/holders.js';
import { PAGES, homeOf, mayOpen, type Page, type SessionAnswer, type User } from './session.js';

/**
 * The operator console (issue 12): a single page in plain TypeScript, bundled by esbuild into dist/console/.
 * Hash routes (#/fleet, #/device/ID, …); every page calls the JSON API, which checks the role again.
 */
export interface PageContext {
  user: User;
  main: HTMLElement;
  /** The route's argument (#/device/<arg>). */
  arg: string | undefined;
}
type PageFn = (c: PageContext) => void | Promise<void>;
const RENDER: Record<Page | 'device', PageFn> = {
  fleet: fleetPage,
  device: deviceDetailPage,
  imports: importsPage,
  lists: listsPage,
  rules: rulesPage,
  enrol: enrolPage,
  stoplist: stopListPage,
  holders: holdersPage,
  journal: journalPage,
  reports: reportsPage,
};

const root = document.getElementById('app')!;
let user: User | null = null;

async function logout(): Promise<void> {
  await api('POST', '/v1/session/logout', {}).catch(() => undefined);
  user = null;
  setCsrf('');
  location.hash = '#/login';
  await render();
}

function shell(u: User, current: string): { main: HTMLElement } {
  const nav = h(
    'nav',
    { class: 'menu', 'aria-label': 'menu' },
    (Object.keys(PAGES) as Page[])
      .filter((p) => mayOpen(u, p))
      .map((p) => h('a', { href: `#/${p}`, class: p === current ? 'active' : null, 'data-page': p }, t(`nav.${p}` as Key))),
  );
  const who = h(
    'div',
    { class: 'who' },
    h('span', { 'data-test': 'user' }, u.name),
    ' · ',
    h('span', { 'data-test': 'role' }, tk(`role.${u.role}`)),
    u.school ? ` · ${u.school}` : null,
    u.carrier ? ` · ${u.carrier}` : null,
    langSwitch(t('app.lang'), () => void render()),
    h('button', { type: 'button', 'data-test': 'logout', onclick: () => void logout() }, t('logout')),
  );
  const main = h('main', {});
  clear(root);
  root.append(h('header', {}, h('h1', {}, t('app.title')), who), nav, main);
  document.title = t('app.title');
  return { main };
}

async function render(): Promise<void> {
  const [page, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  if (!user) {
    try {
      const s = await api<SessionAnswer>('GET', '/v1/session');
      user = s.user;
      setCsrf(s.csrf);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) {
        clear(root);
        root.append(errorBox(e));
        return;
      }
    }
  }
  if (!user) {
    clear(root);
    root.append(
      h(
        'header',
        {},
        h('h1', {}, t('app.title')),
        h(
          'div',
          { class: 'who' },
          langSwitch(t('app.lang'), () => void render()),
        ),
      ),
      loginPage(async (s) => {
        user = s.user;
        setCsrf(s.csrf);
        location.hash = `#/${homeOf(s.user)}`;
        await render();
      }),
    );
    return;
  }
  const name = page && page !== 'login' ? page : homeOf(user);
  const navName = name === 'device' ? 'fleet' : name;
  const { main } = shell(user, navName);
  const fn = RENDER[name as Page | 'device'] as PageFn | undefined;
  if (!fn || !(name === 'device' ? mayOpen(user, 'fleet') : mayOpen(user, name as Page))) {
    main.append(h('p', { class: 'forbidden', 'data-test': 'forbidden' }, t('page.forbidden')));
    return;
  }
  try {
    await fn({ user, main, arg: rest.length ? decodeURIComponent(rest.join('/')) : undefined });
  } catch (e) {
    main.append(errorBox(e));
  }
}

setLang(currentLang());
window.addEventListener('hashchange', () => void render());
void render();
