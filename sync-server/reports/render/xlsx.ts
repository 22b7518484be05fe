import ExcelJS from 'exceljs';
import { rubles, type ReportDoc } from '../../../protocol/reports.js';
import { bi, fixedDate, footerLines, paramsLine, sourceLine } from './cells.js';
import { fixZipDates } from './zip-dates.js';

/**
 * The report as an XLSX workbook written by exceljs: a first sheet with the
 * title, period, parameters, notes and signature, then one sheet per section
 * (bilingual header row, rows, a bold totals row). Numbers stay numbers
 * (kopecks as rubles with a 0.00 format) so a spreadsheet can sum them.
 * Creation dates and the ZIP entries' times are fixed: same document, same bytes.
 */
export async function renderXlsx(doc: ReportDoc): Promise<Buffer> {
  const at = fixedDate(doc);
  const wb = new ExcelJS.Workbook();
  wb.creator = 'Resident Card sync-server';
  wb.lastModifiedBy = 'Resident Card sync-server';
  wb.created = at;
  wb.modified = at;
  wb.title = bi(doc.title);

  const info = wb.addWorksheet('Отчёт-Report');
  info.columns = [{ width: 28 }, { width: 100 }];
  info.addRow([doc.title.ru]).font = { bold: true, size: 14 };
  info.addRow([doc.title.en]).font = { italic: true };
  info.addRow(['Период / Period', `${doc.period.from}..${doc.period.to}`]);
  info.addRow(['Параметры / Parameters', paramsLine(doc)]);
  info.addRow(['Источник / Source', sourceLine(doc)]);
  for (const n of doc.notes) info.addRow(['Примечание / Note', `${n.ru} / ${n.en}`]);
  for (const l of footerLines(doc)) info.addRow(['Подпись / Signature', l]);

  const used = new Set<string>(['Отчёт-Report']);
  for (const s of doc.sections) {
    // sheet names: at most 31 characters, no []:*?/\ and unique
    const base = s.id.replace(/[[\]:*?/\\]/g, '-').slice(0, 28) || 'section';
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
    used.add(name);
    const ws = wb.addWorksheet(name);
    ws.addRow([bi(s.title)]).font = { bold: true };
    const head = ws.addRow(s.columns.map((c) => bi(c.title)));
    head.font = { bold: true };
    head.alignment = { wrapText: true, vertical: 'top' };
    ws.columns = s.columns.map((c) => ({ width: c.kind === 'text' ? 24 : 14 }));
    const put = (r: Record<string, string | number | null>) =>
      ws.addRow(
        s.columns.map((c) => {
          const v = r[c.key];
          if (v === null || v === undefined) return null;
          if (c.kind === 'kopecks' && typeof v === 'number') return Number(rubles(v));
          return v;
        }),
      );
    for (const r of s.rows) put(r);
    if (s.totals) put(s.totals).font = { bold: true };
    s.columns.forEach((c, i) => {
      if (c.kind === 'kopecks') ws.getColumn(i + 1).numFmt = '0.00';
      if (c.kind === 'percent') ws.getColumn(i + 1).numFmt = '0.0';
    });
  }
  const out = Buffer.from(await wb.xlsx.writeBuffer());
  return fixZipDates(out, at);
}
