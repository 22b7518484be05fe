import type { ReportDoc } from '../../../protocol/reports.js';
import { bi, cellText, footerLines, paramsLine, sourceLine } from './cells.js';

/** A CSV field: quoted when needed; a text that a spreadsheet would run as a formula gets a leading apostrophe. */
function field(s: string): string {
  const safe = /^[=+@\t\r]/.test(s) || (s.startsWith('-') && !/^-\d/.test(s)) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
function line(cells: string[]): string {
  return cells.map(field).join(',');
}

/**
 * One CSV file: the title and parameters, then each section one after another
 * (its title, a header of "Русский / English" column titles, rows, totals),
 * separated by an empty line; notes and the signature at the end. UTF-8 with a
 * BOM so spreadsheet programs read the Cyrillic right.
 */
export function renderCsv(doc: ReportDoc): Buffer {
  const out: string[] = [];
  out.push(line([bi(doc.title)]));
  out.push(line(['Параметры / Parameters', paramsLine(doc)]));
  out.push(line(['Период / Period', `${doc.period.from}..${doc.period.to}`]));
  out.push(line(['Источник / Source', sourceLine(doc)]));
  for (const s of doc.sections) {
    out.push('');
    out.push(line([`# ${bi(s.title)}`]));
    out.push(line(s.columns.map((c) => bi(c.title))));
    for (const r of s.rows) out.push(line(s.columns.map((c) => cellText(c, r))));
    if (s.totals) {
      const t = s.totals;
      out.push(line(s.columns.map((c) => cellText(c, t))));
    }
  }
  if (doc.notes.length > 0) {
    out.push('');
    for (const n of doc.notes) out.push(line([bi(n)]));
  }
  out.push('');
  for (const f of footerLines(doc)) out.push(line([f]));
  return Buffer.from(`\uFEFF${out.join('\r\n')}\r\n`, 'utf8');
}
