import type { Chart, ReportDoc } from '../../../protocol/reports.js';
import { bi, cellText, footerLines, paramsLine, sourceLine } from './cells.js';
import { chartGeometry } from './chart.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}
const f = (n: number) => (Math.round(n * 10) / 10).toString();

function titleHtml(t: { ru: string; en: string }): string {
  return t.ru === t.en ? esc(t.ru) : `${esc(t.ru)}<br><span class="en">${esc(t.en)}</span>`;
}

/** One chart as inline SVG: axes, ticks, bars or a line per series, a legend. */
function svgChart(c: Chart): string {
  const W = 880;
  const H = 300;
  const g = chartGeometry(c, W, H);
  const p = g.plot;
  const parts: string[] = [];
  parts.push(`<rect x="${p.x}" y="${p.y}" width="${f(p.w)}" height="${f(p.h)}" fill="#fafafa" stroke="#999"/>`);
  for (const t of g.yTicks) {
    parts.push(`<line x1="${p.x}" y1="${f(t.y)}" x2="${f(p.x + p.w)}" y2="${f(t.y)}" stroke="#ddd"/>`);
    parts.push(`<text x="${p.x - 6}" y="${f(t.y + 4)}" text-anchor="end" font-size="11">${esc(t.label)}</text>`);
  }
  for (const t of g.xTicks) parts.push(`<text x="${f(t.x)}" y="${f(p.y + p.h + 14)}" text-anchor="middle" font-size="11">${esc(t.label)}</text>`);
  for (const s of g.series) {
    if (c.kind === 'bar') {
      for (const b of s.bars) parts.push(`<rect x="${f(b.x)}" y="${f(b.y)}" width="${f(b.w)}" height="${f(b.h)}" fill="${s.color}"/>`);
    } else {
      parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map((q) => `${f(q.x)},${f(q.y)}`).join(' ')}"/>`);
      for (const q of s.points) parts.push(`<circle cx="${f(q.x)}" cy="${f(q.y)}" r="2.5" fill="${s.color}"/>`);
    }
  }
  parts.push(`<text x="${f(p.x + p.w / 2)}" y="${H - 14}" text-anchor="middle" font-size="12">${esc(bi(c.xTitle))}</text>`);
  parts.push(`<text transform="translate(14 ${f(p.y + p.h / 2)}) rotate(-90)" text-anchor="middle" font-size="12">${esc(bi(c.yTitle))}</text>`);
  let lx = p.x;
  for (const s of g.series) {
    parts.push(`<rect x="${f(lx)}" y="${H - 10}" width="10" height="10" fill="${s.color}"/>`);
    parts.push(`<text x="${f(lx + 14)}" y="${H - 1}" font-size="11">${esc(s.name)}</text>`);
    lx += 24 + s.name.length * 7;
  }
  return `<figure><figcaption>${titleHtml(c.title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(bi(c.title))}">${parts.join('')}</svg></figure>`;
}

const CSS = `body{font-family:"DejaVu Sans",Arial,sans-serif;color:#111;margin:24px;max-width:1100px}
h1{font-size:20px;margin:0 0 4px}h1 .en,h2 .en,figcaption .en,th .en{color:#555;font-weight:normal}
h2{font-size:16px;margin:20px 0 6px}.meta{color:#444;font-size:12px;margin:2px 0}
table{border-collapse:collapse;font-size:12px;margin:4px 0 12px}th,td{border:1px solid #bbb;padding:3px 6px;vertical-align:top}
th{background:#eef2f7;text-align:left;font-size:11px}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.totals td{font-weight:bold;background:#f6f6f6}figure{margin:12px 0}figcaption{font-weight:bold;font-size:13px;margin-bottom:4px}
ul.notes{font-size:12px;color:#333}footer{border-top:1px solid #999;margin-top:20px;padding-top:6px;font-size:11px;color:#333;word-break:break-all;font-family:"DejaVu Sans Mono",monospace}`;

/**
 * The report as one self-contained HTML page: inline CSS and inline SVG
 * charts, no script, no external asset. Russian first, English under it.
 * The footer carries the SHA-256 and the Ed25519 signature when signed.
 */
export function renderHtml(doc: ReportDoc): Buffer {
  const o: string[] = [];
  o.push(`<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8"><title>${esc(bi(doc.title))}</title><style>${CSS}</style></head><body>`);
  o.push(`<h1>${titleHtml(doc.title)}</h1>`);
  o.push(`<p class="meta">Период / Period: ${esc(doc.period.from)} — ${esc(doc.period.to)}</p>`);
  o.push(`<p class="meta">Параметры / Parameters: ${esc(paramsLine(doc))}</p>`);
  o.push(`<p class="meta">Источник / Source: ${esc(sourceLine(doc))}</p>`);
  for (const c of doc.charts) o.push(svgChart(c));
  for (const s of doc.sections) {
    o.push(`<section id="${esc(s.id)}"><h2>${titleHtml(s.title)}</h2><table><thead><tr>`);
    for (const c of s.columns) o.push(`<th>${titleHtml(c.title)}</th>`);
    o.push('</tr></thead><tbody>');
    const num = (k: string) => (k === 'text' || k === 'date' || k === 'time' ? '' : ' class="num"');
    for (const r of s.rows) o.push(`<tr>${s.columns.map((c) => `<td${num(c.kind)}>${esc(cellText(c, r))}</td>`).join('')}</tr>`);
    if (s.totals) {
      const t = s.totals;
      o.push(`<tr class="totals">${s.columns.map((c) => `<td${num(c.kind)}>${esc(cellText(c, t))}</td>`).join('')}</tr>`);
    }
    o.push('</tbody></table></section>');
  }
  if (doc.notes.length > 0) o.push(`<ul class="notes">${doc.notes.map((n) => `<li>${esc(n.ru)}<br><i>${esc(n.en)}</i></li>`).join('')}</ul>`);
  o.push(`<footer>${footerLines(doc).map(esc).join('<br>')}</footer></body></html>\n`);
  return Buffer.from(o.join('\n'), 'utf8');
}
