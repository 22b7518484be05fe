/// <reference lib="dom" />
import type { Chart, ReportDoc, Section } from '../../../../protocol/reports.js';
import { api, errorBox } from '../api.js';
import { field, h, table } from '../dom.js';
import { currentLang, t, tk } from '../i18n/index.js';
import type { PageContext } from '../main.js';
import type { Role } from '../session.js';

const FORMATS = ['json', 'csv', 'xlsx', 'pdf', 'html'] as const;
/** Which parameters each report reads (protocol/api.ts ReportQuery). */
const PARAMS: Record<string, readonly ('month' | 'carrier' | 'school' | 'day' | 'since')[]> = {
  compensation: ['month', 'carrier'],
  attendance: ['school', 'month', 'day'],
  meals: ['school', 'month'],
  charging: ['month'],
  devices: ['since'],
};
/** The reports a role may read (the API checks again). */
function reportsOf(role: Role): string[] {
  if (role === 'carrier') return ['compensation'];
  if (role === 'school') return ['attendance', 'meals'];
  return Object.keys(PARAMS);
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A simple bar chart (inline SVG) of a report chart: the sum of its series per x value. */
export function barChart(c: Chart): SVGElement {
  const W = 640;
  const H = 220;
  const pad = 28;
  const sums = c.x.map((_, i) => c.series.reduce((s, se) => s + (se.values[i] ?? 0), 0));
  const max = Math.max(1, ...sums);
  const bw = (W - pad * 2) / Math.max(1, sums.length);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': c.title[currentLang()] });
  root.append(svg('line', { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: '#888' }));
  root.append(svg('text', { x: pad, y: 14, 'font-size': 12 }, `${c.title[currentLang()]} (max ${max})`));
  sums.forEach((v, i) => {
    const bh = ((H - pad * 2) * v) / max;
    const bar = svg('rect', { x: pad + i * bw + 1, y: H - pad - bh, width: Math.max(1, bw - 2), height: bh, fill: '#2f6fb3' });
    bar.append(svg('title', {}, `${c.x[i]}: ${v}`));
    root.append(bar);
  });
  if (c.x.length) {
    root.append(svg('text', { x: pad, y: H - 8, 'font-size': 10 }, c.x[0]!));
    root.append(svg('text', { x: W - pad, y: H - 8, 'font-size': 10, 'text-anchor': 'end' }, c.x[c.x.length - 1]!));
  }
  return root;
}

/** A chart from a section when the report has none: its first number column per row. */
function sectionChart(s: Section): Chart | null {
  const col = s.columns.find((c) => c.kind === 'int' || c.kind === 'kopecks');
  const label = s.columns.find((c) => c.kind === 'text' || c.kind === 'date');
  if (!col || !label || s.rows.length === 0) return null;
  return {
    title: col.title,
    kind: 'bar',
    xTitle: label.title,
    yTitle: col.title,
    x: s.rows.map((r) => String(r[label.key] ?? '')),
    series: [{ name: col.key, values: s.rows.map((r) => Number(r[col.key] ?? 0)) }],
  };
}

function cell(v: string | number | null | undefined, kind: string): string {
  if (v === null || v === undefined) return '';
  return kind === 'kopecks' && typeof v === 'number' ? (v / 100).toFixed(2) : String(v);
}

export function reportsPage({ main, user }: PageContext): void {
  const names = reportsOf(user.role);
  const name = h(
    'select',
    { name: 'report', 'data-test': 'report-name' },
    names.map((n) => h('option', { value: n }, tk(`reports.${n}`))),
  );
  const month = new Date().toISOString().slice(0, 7);
  const inputs = {
    month: h('input', { name: 'month', type: 'month', value: month, 'data-test': 'r-month' }),
    carrier: h('input', { name: 'carrier', value: user.carrier ?? '', readonly: user.role === 'carrier', 'data-test': 'r-carrier' }),
    school: h('input', { name: 'school', value: user.school ?? '', readonly: user.role === 'school', 'data-test': 'r-school' }),
    day: h('input', { name: 'day', type: 'date', 'data-test': 'r-day' }),
    since: h('input', { name: 'since', type: 'date', value: `${month}-01`, 'data-test': 'r-since' }),
  };
  const fields = h('div', { class: 'toolbar' });
  const out = h('div', {});
  const showFields = () => {
    const want = PARAMS[name.value] ?? [];
    fields.replaceChildren(...want.map((k) => field(t(`reports.${k}`), inputs[k])));
  };
  const query = () => {
    const q = new URLSearchParams();
    for (const k of PARAMS[name.value] ?? []) if (inputs[k].value) q.set(k, inputs[k].value);
    return q;
  };
  const form = h(
    'form',
    { class: 'card' },
    field(t('reports.name'), name),
    fields,
    h('button', { type: 'submit', 'data-test': 'report-show' }, t('reports.show')),
  );
  name.addEventListener('change', showFields);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = query();
    api<ReportDoc>('GET', `/v1/reports/${name.value}?${q}`)
      .then((doc) => {
        const lang = currentLang();
        const charts = doc.charts.length ? doc.charts : doc.sections.map(sectionChart).filter((c): c is Chart => c !== null);
        out.replaceChildren(
          h(
            'div',
            { class: 'downloads', 'data-test': 'report-downloads' },
            `${t('reports.download')}: `,
            FORMATS.map((f) => {
              const fq = new URLSearchParams(q);
              fq.set('format', f);
              return h('a', { href: `/v1/reports/${name.value}?${fq}`, download: '', class: 'button', 'data-format': f }, f.toUpperCase());
            }),
          ),
          h('h3', { 'data-test': 'report-title' }, doc.title[lang]),
          h('div', { class: 'charts' }, charts.slice(0, 3).map(barChart)),
          ...doc.sections.map((s) =>
            h(
              'section',
              {},
              h('h4', {}, s.title[lang]),
              table(
                s.columns.map((c) => c.title[lang]),
                [...s.rows, ...(s.totals ? [s.totals] : [])].map((r) => s.columns.map((c) => cell(r[c.key], c.kind))),
                { 'data-section': s.id },
              ),
            ),
          ),
          ...doc.notes.map((n) => h('p', { class: 'note' }, n[lang])),
        );
      })
      .catch((err: unknown) => out.replaceChildren(errorBox(err)));
  });
  showFields();
  main.append(h('h2', {}, t('nav.reports')), form, out);
}
