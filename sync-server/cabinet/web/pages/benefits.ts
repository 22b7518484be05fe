/// <reference lib="dom" />
import { h } from '../../../console/web/dom.js';
import { both, tc } from '../i18n/index.js';
import type { CabinetContext } from '../main.js';
import { categoryLabel, fmtDay } from '../shell.js';

/** My benefits: each category's name, what it gives (the fare rule in words) and how long it is valid. */
export function benefitsPage({ me, main }: CabinetContext): void {
  main.append(
    h(
      'section',
      { class: 'card', 'data-test': 'benefits' },
      h('h1', {}, tc('benefits.title')),
      me.benefits.length === 0
        ? h('p', { class: 'muted' }, tc('benefits.none'))
        : h(
            'ul',
            { class: 'items' },
            me.benefits.map((b) =>
              h(
                'li',
                { 'data-test': 'benefit', 'data-category': b.category },
                h('strong', {}, categoryLabel(b.category, b.name)),
                h('p', {}, both(b.rule)),
                h(
                  'p',
                  { class: 'muted small' },
                  `${tc('benefits.valid')} ${tc('benefits.from')} ${fmtDay(b.validFrom)} ${tc('benefits.to')} ${fmtDay(b.validTo)}`,
                ),
              ),
            ),
          ),
    ),
  );
}
