/// <reference lib="dom" />
import { append, h } from '../../../console/web/dom.js';
import { tc, type CabinetKey } from '../i18n/index.js';
import type { CabinetContext } from '../main.js';
import { expiryShown, fmtAt } from '../shell.js';

/** My card: the masked number, expiry and status (stopped: the reason and what to do); connect or replace. */
export function cardPage({ me, main }: CabinetContext): void {
  const c = me.card;
  const box = h('section', { class: 'card', 'data-test': 'my-card' }, h('h1', {}, tc('card.title')));
  if (!c) {
    box.append(
      h('p', { 'data-test': 'no-card' }, tc('card.none')),
      h('a', { class: 'button primary', href: '#/connect', 'data-test': 'connect' }, tc('card.connect')),
    );
    main.append(box);
    return;
  }
  append(box, [
    h(
      'div',
      { class: `plastic ${c.status}` },
      h('span', { class: 'pan', 'data-test': 'masked' }, c.masked.replace(/(.{4})/g, '$1 ').trim()),
      h('span', { class: 'exp' }, expiryShown(c.expiry)),
    ),
    h(
      'dl',
      {},
      h('dt', {}, tc('card.status')),
      h('dd', {}, h('span', { class: `badge ${c.status}`, 'data-test': 'status', 'data-status': c.status }, tc(`card.status.${c.status}` as CabinetKey))),
      h('dt', {}, tc('card.expiry')),
      h('dd', { 'data-test': 'expiry' }, expiryShown(c.expiry)),
      h('dt', {}, tc('card.since')),
      h('dd', {}, fmtAt(c.since)),
      c.status === 'stopped' ? [h('dt', {}, tc('card.stop.reason')), h('dd', { 'data-test': 'stop-reason' }, c.stopReason ?? '—')] : null,
    ),
    c.status === 'stopped'
      ? h('p', { class: 'notice', 'data-test': 'stop-what' }, tc('card.stop.what'), ' ', h('a', { href: '#/debts' }, tc('nav.debts')))
      : null,
    h('a', { class: 'button', href: '#/connect', 'data-test': 'replace' }, tc('card.replace')),
  ]);
  main.append(box);
}
