/// <reference lib="dom" />
import type { FleetDevice, FleetRow, FleetWire } from '../../../../protocol/console-api.js';
import { expandFleetRow } from '../../../../protocol/fleet-rows.js';
import { api } from '../api.js';
import { field, fmtTime, h } from '../dom.js';
import { t, tk } from '../i18n/index.js';
import type { PageContext } from '../main.js';

/** Rows per page: 10,000 compact rows are filtered and sorted in memory; only the visible page is expanded and in the DOM. */
export const PAGE_SIZE = 100;

type SortKey = 'id' | 'lastSeen' | 'backlog' | 'alarms';

/** Filter and sort the fleet's compact rows (pure: the benchmark times it with the rendering). */
export function selectDevices(all: readonly FleetRow[], q: { text: string; alarmsOnly: boolean; sort: SortKey; desc: boolean }): FleetRow[] {
  const text = q.text.trim().toLowerCase();
  const rows = all.filter(
    (d) =>
      (!q.alarmsOnly || (d.alarms?.length ?? 0) > 0) &&
      (!text || d.id.toLowerCase().includes(text) || (d.school ?? '').toLowerCase().includes(text) || (d.route ?? '').toLowerCase().includes(text)),
  );
  const key = (d: FleetRow): string | number =>
    q.sort === 'lastSeen' ? (d.lastSeen ?? '') : q.sort === 'backlog' ? (d.backlog ?? 0) : q.sort === 'alarms' ? (d.alarms?.length ?? 0) : d.id;
  rows.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    const c = x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1;
    return q.desc ? -c : c;
  });
  return rows;
}

function listsCell(d: FleetDevice): HTMLElement {
  return h(
    'span',
    {},
    Object.entries(d.lists).map(([s, v]) => h('span', { class: v.device < v.current ? 'tag warn' : 'tag' }, `${s} ${v.device}/${v.current}`)),
  );
}

/** A cell with its column's title in `data-label`: on a phone each row is a card, its cells labelled from it (style.css). */
const cell = (label: string, attrs: Record<string, string>, ...children: (HTMLElement | string | number | HTMLElement[])[]) =>
  h('td', { ...attrs, 'data-label': label }, h('span', {}, ...children));

function row(d: FleetDevice): HTMLElement {
  const state = d.revokedAt ? 'revoked' : d.online ? 'online' : 'offline';
  return h(
    'tr',
    { 'data-device': d.id, 'data-state': state },
    cell(t('col.id'), {}, h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, d.id)),
    cell(t('col.kind'), {}, d.kind ?? '—'),
    cell(t('col.where'), {}, d.school ?? d.route ?? '—'),
    cell(t('col.state'), {}, h('span', { class: `dot ${state}` }), tk(`state.${state}`)),
    cell(t('col.lastSeen'), {}, fmtTime(d.lastSeen)),
    cell(t('col.lists'), {}, listsCell(d)),
    cell(t('col.backlog'), { class: 'num' }, d.backlog),
    cell(t('col.reader'), {}, d.reader ?? '—'),
    cell(
      t('col.alarms'),
      {},
      d.alarms.map((a) => h('span', { class: 'tag alarm', 'data-alarm': a }, tk(`alarm.${a}`))),
    ),
  );
}

/** Render the fleet table into `host` from an answer already loaded (the benchmark calls this directly). */
export interface FleetView {
  text: string;
  alarmsOnly: boolean;
  sort: SortKey;
  desc: boolean;
  page: number;
}
export const newFleetView = (): FleetView => ({ text: '', alarmsOnly: false, sort: 'id', desc: false, page: 0 });

export function renderFleet(
  host: HTMLElement,
  data: FleetWire,
  onReload?: (q: { silentMinutes: number; listMaxAgeMinutes: number }) => void,
  state: FleetView = newFleetView(),
): void {
  let online = 0;
  let alarmed = 0;
  for (const d of data.devices) {
    if (d.online) online++;
    if ((d.alarms?.length ?? 0) > 0) alarmed++;
  }
  const summary = h(
    'div',
    { class: 'summary', 'data-test': 'fleet-summary' },
    h('div', { class: 'stat' }, h('b', {}, data.devices.length), t('fleet.total')),
    h('div', { class: 'stat ok' }, h('b', {}, online), t('fleet.online')),
    h('div', { class: 'stat' }, h('b', {}, data.devices.length - online), t('fleet.offline')),
    h('div', { class: 'stat bad' }, h('b', {}, alarmed), t('fleet.alarms')),
  );
  const search = h('input', { type: 'search', placeholder: t('common.filter'), 'data-test': 'fleet-filter', value: state.text });
  const onlyAlarms = h('input', { type: 'checkbox', 'data-test': 'fleet-alarms', checked: state.alarmsOnly });
  const silent = h('input', { type: 'number', min: 1, value: data.policy.silentMinutes, class: 'short' });
  const listAge = h('input', { type: 'number', min: 1, value: data.policy.listMaxAgeMinutes, class: 'short' });
  const tbody = h('tbody', {});
  const pager = h('div', { class: 'pager' });
  const heads: [string, SortKey | null][] = [
    [t('col.id'), 'id'],
    [t('col.kind'), null],
    [t('col.where'), null],
    [t('col.state'), null],
    [t('col.lastSeen'), 'lastSeen'],
    [t('col.lists'), null],
    [t('col.backlog'), 'backlog'],
    [t('col.reader'), null],
    [t('col.alarms'), 'alarms'],
  ];
  const thead = h(
    'thead',
    {},
    h(
      'tr',
      {},
      heads.map(([title, key]) =>
        h(
          'th',
          key
            ? {
                class: 'sortable',
                onclick: () => {
                  state.desc = state.sort === key ? !state.desc : false;
                  state.sort = key;
                  draw();
                },
              }
            : {},
          title,
        ),
      ),
    ),
  );
  function draw(): void {
    const rows = selectDevices(data.devices, state);
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    tbody.replaceChildren(...rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE).map((r) => row(expandFleetRow(r, data.current))));
    pager.replaceChildren(
      h('button', { type: 'button', disabled: state.page === 0, onclick: () => ((state.page -= 1), draw()) }, t('common.prev')),
      h('span', { 'data-test': 'fleet-page' }, `${t('common.page')} ${state.page + 1} ${t('common.of')} ${pages} (${rows.length})`),
      h('button', { type: 'button', disabled: state.page >= pages - 1, onclick: () => ((state.page += 1), draw()) }, t('common.next')),
    );
  }
  search.addEventListener('input', () => {
    state.text = search.value;
    state.page = 0;
    draw();
  });
  onlyAlarms.addEventListener('change', () => {
    state.alarmsOnly = onlyAlarms.checked;
    state.page = 0;
    draw();
  });
  const policy = () => onReload?.({ silentMinutes: Number(silent.value) || 60, listMaxAgeMinutes: Number(listAge.value) || 60 });
  silent.addEventListener('change', policy);
  listAge.addEventListener('change', policy);
  host.replaceChildren(
    summary,
    h(
      'div',
      { class: 'toolbar' },
      search,
      h('label', { class: 'check' }, onlyAlarms, t('fleet.onlyAlarms')),
      field(t('fleet.silentMinutes'), silent),
      field(t('fleet.listMaxAge'), listAge),
    ),
    h('div', { class: 'table-wrap fleet-wrap' }, h('table', { class: 'fleet', 'data-test': 'fleet' }, thead, tbody)),
    pager,
  );
  draw();
}

export async function fleetPage({ main }: PageContext): Promise<void> {
  const host = h('section', {}, t('common.loading'));
  main.append(h('h2', {}, t('nav.fleet')), host);
  const view = newFleetView();
  let qs = '';
  const load = async (q?: { silentMinutes: number; listMaxAgeMinutes: number }) => {
    if (q) qs = `?silentMinutes=${q.silentMinutes}&listMaxAgeMinutes=${q.listMaxAgeMinutes}`;
    renderFleet(host, await api<FleetWire>('GET', `/v1/console/fleet${qs}`), (p) => void load(p), view);
  };
  await load();
  // live: the page follows the fleet while it is open
  const timer = setInterval(() => {
    if (!host.isConnected) return clearInterval(timer);
    if (document.activeElement && host.contains(document.activeElement)) return; // not while the operator types
    void api<FleetWire>('GET', `/v1/console/fleet${qs}`)
      .then((d) => host.isConnected && renderFleet(host, d, (p) => void load(p), view))
      .catch(() => undefined);
  }, 3000);
}
