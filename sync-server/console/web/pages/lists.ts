/// <reference lib="dom" />
import type { ListsAnswer } from '../../../../protocol/console-api.js';
import { api } from '../api.js';
import { fmtTime, h, table } from '../dom.js';
import { t } from '../i18n/index.js';
import type { PageContext } from '../main.js';

export async function listsPage({ main }: PageContext): Promise<void> {
  const l = await api<ListsAnswer>('GET', '/v1/console/lists');
  main.append(
    h('h2', {}, t('nav.lists')),
    table(
      [t('lists.scope'), t('lists.version'), t('lists.entries'), t('lists.published'), t('lists.versions')],
      l.scopes.map((s) => [
        h('code', {}, s.scope),
        s.version,
        s.entries,
        fmtTime(s.updatedAt),
        s.versions.map((v) => `v${v.version} (${v.records}) ${fmtTime(v.publishedAt)}`).join('; ') || '—',
      ]),
      { 'data-test': 'lists' },
    ),
    h('h3', {}, t('lists.configs')),
    table(
      [t('rules.name'), t('lists.version'), t('lists.published')],
      l.configs.map((c) => [h('a', { href: `#/rules/${encodeURIComponent(c.name)}` }, c.name), c.version, fmtTime(c.updatedAt)]),
    ),
  );
}
