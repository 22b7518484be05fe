/// <reference lib="dom" />
import type { ChildDaysAnswer } from '../../../../protocol/cabinet-api.js';
import { api } from '../../../console/web/api.js';
import { h } from '../../../console/web/dom.js';
import { tc } from '../i18n/index.js';
import type { CabinetContext } from '../main.js';
import { fmtAt, fmtDay } from '../shell.js';
import { dayBefore } from './days.js';

/** My children (the guardian link): pick one, then their school passages and meals of the last 30 days, by day. */
export async function childrenPage({ me, main, arg }: CabinetContext): Promise<void> {
  const box = h('section', { class: 'card', 'data-test': 'children' }, h('h1', {}, tc('children.title')));
  main.append(box);
  if (!arg) {
    box.append(
      me.children.length === 0
        ? h('p', { class: 'muted' }, tc('children.none'))
        : h(
            'ul',
            { class: 'items' },
            me.children.map((c) =>
              h('li', {}, h('a', { href: `#/children/${encodeURIComponent(c.personId)}`, 'data-test': 'child', 'data-person': c.personId }, c.name)),
            ),
          ),
    );
    return;
  }
  // the last 30 days up to the server's today (the demo's day in the demo), not the phone's
  const a = await api<ChildDaysAnswer>('GET', `/v1/cabinet/children/${encodeURIComponent(arg)}/days?from=${dayBefore(me.today, { days: 29 })}&to=${me.today}`);
  const direction = (d: string | null) => (d === 'entry' ? tc('children.in') : d === 'exit' ? tc('children.out') : '');
  const refused = (result: string) => (result === 'allow' ? '' : ` (${tc('children.refused')})`);
  const time = (iso: string) => fmtAt(iso, { hour: '2-digit', minute: '2-digit' });
  box.append(
    h('a', { href: '#/children', class: 'back' }, tc('children.back')),
    h('h2', { 'data-test': 'child-name' }, a.child.name),
    h('p', { class: 'muted' }, tc('children.days')),
    a.days.length === 0
      ? h('p', {}, tc('app.none'))
      : h(
          'ul',
          { class: 'items days' },
          [...a.days]
            .sort((x, y) => y.day.localeCompare(x.day))
            .map((d) =>
              h(
                'li',
                { 'data-test': 'child-day', 'data-day': d.day },
                h('strong', {}, fmtDay(d.day)),
                d.passages.length
                  ? h(
                      'p',
                      { 'data-test': 'passages' },
                      `${tc('children.passages')}: `,
                      d.passages.map((p) => `${time(p.time)} ${direction(p.direction)}${refused(p.result)}`).join(', '),
                    )
                  : null,
                d.meals.length
                  ? h(
                      'p',
                      { 'data-test': 'meals' },
                      `${tc('children.meals')}: `,
                      d.meals.map((m) => `${time(m.time)} ${m.meal ?? ''}${refused(m.result)}`).join(', '),
                    )
                  : null,
              ),
            ),
        ),
  );
}
