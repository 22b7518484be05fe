/// <reference lib="dom" />
import '../../cabinet/web/style.css';
import type { MeasuresAnswer, PartnersAnswer, SchoolsAnswer } from '../../../protocol/portal-api.js';
import { ApiError, api, errorBox } from '../../console/web/api.js';
import { clear, h, table } from '../../console/web/dom.js';
import { both, tc, type CabinetKey } from '../../cabinet/web/i18n/index.js';
import { fmtDay, header, yesNo } from '../../cabinet/web/shell.js';

/**
 * The public portal (issue 15 item 4): banks, partners, schools, measures, from the public JSON routes; no sign-in.
 * Hash routes (#/banks, #/partners, #/schools, #/measures); the same look and language switch as the cabinet.
 */
/** GET /v1/public/banks (protocol/bank-api.ts, the bank connection's branch): only what this page shows. */
interface BanksAnswer {
  banks: { id: string; name: string; site?: string; since: string }[];
}
type PageFn = (main: HTMLElement) => Promise<void>;

async function banksPage(main: HTMLElement): Promise<void> {
  main.append(h('p', { class: 'muted' }, tc('portal.banks.intro')));
  let a: BanksAnswer;
  try {
    a = await api<BanksAnswer>('GET', '/v1/public/banks');
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return void main.append(h('p', { 'data-test': 'banks-missing' }, tc('portal.banks.missing')));
    throw e;
  }
  main.append(
    table(
      [tc('portal.bank.name'), tc('portal.bank.since')],
      a.banks.map((b) => [b.site ? h('a', { href: b.site, rel: 'noopener noreferrer', target: '_blank' }, b.name) : b.name, fmtDay(b.since.slice(0, 10))]),
      { 'data-test': 'banks' },
    ),
  );
}

async function partnersPage(main: HTMLElement): Promise<void> {
  const a = await api<PartnersAnswer>('GET', '/v1/public/partners');
  main.append(
    h('p', { class: 'muted' }, tc('portal.partners.intro')),
    table(
      [tc('portal.partner.name'), tc('portal.partner.category'), tc('portal.partner.discount')],
      a.partners.map((p) => [
        p.name,
        p.category,
        h(
          'span',
          {},
          `${p.discountPercent}%`,
          p.byBenefit.map((b) => h('span', { class: 'muted small' }, h('br', {}), `${tc('portal.partner.more')}: ${both(b.name)} — ${b.discountPercent}%`)),
        ),
      ]),
      { 'data-test': 'partners' },
    ),
  );
}

async function schoolsPage(main: HTMLElement): Promise<void> {
  const a = await api<SchoolsAnswer>('GET', '/v1/public/schools');
  main.append(
    h('p', { class: 'muted' }, tc('portal.schools.intro')),
    table(
      [tc('portal.school.id'), tc('portal.school.turnstiles'), tc('portal.school.canteens'), tc('portal.school.rules')],
      a.schools.map((s) => [s.id, s.turnstiles, s.canteens, yesNo(s.ownRules)]),
      { 'data-test': 'schools' },
    ),
  );
}

async function measuresPage(main: HTMLElement): Promise<void> {
  const a = await api<MeasuresAnswer>('GET', '/v1/public/measures');
  main.append(
    h('p', { class: 'muted' }, tc('portal.measures.intro')),
    h(
      'ul',
      { class: 'items', 'data-test': 'measures' },
      a.measures.map((m) =>
        h(
          'li',
          { 'data-test': 'measure', 'data-category': m.category },
          h('strong', {}, both(m.name)),
          h('p', {}, `${tc('portal.measure.transit')}: ${both(m.transit)}`),
          m.partners ? h('p', { class: 'muted small' }, both(m.partners)) : null,
        ),
      ),
    ),
  );
}

const PAGES: { page: string; key: CabinetKey; render: PageFn }[] = [
  { page: 'measures', key: 'portal.measures', render: measuresPage },
  { page: 'banks', key: 'portal.banks', render: banksPage },
  { page: 'partners', key: 'portal.partners', render: partnersPage },
  { page: 'schools', key: 'portal.schools', render: schoolsPage },
];

const root = document.getElementById('app')!;

async function render(): Promise<void> {
  const name = location.hash.replace(/^#\/?/, '') || 'measures';
  const page = PAGES.find((p) => p.page === name) ?? PAGES[0]!;
  const main = h('main', { class: 'page' });
  const box = h('section', { class: 'card', 'data-test': `portal-${page.page}` }, h('h1', {}, tc(page.key)));
  main.append(box);
  clear(root);
  root.append(
    header('portal.title', 'portal.subtitle', () => void render(), [h('a', { href: '/cabinet/', 'data-test': 'to-cabinet' }, tc('portal.cabinet'))]),
    h(
      'nav',
      { class: 'top-tabs' },
      PAGES.map((p) => h('a', { href: `#/${p.page}`, class: p === page ? 'active' : '', 'data-test': `tab-${p.page}` }, tc(p.key))),
    ),
    main,
  );
  try {
    await page.render(box);
  } catch (e) {
    box.append(errorBox(e));
  }
}

window.addEventListener('hashchange', () => void render());
void render();
