import { ReportDoc } from '../../../protocol/reports.js';
import { renderCsv } from './csv.js';
import { renderHtml } from './html.js';
import { renderJson } from './json.js';
import { renderPdf } from './pdf.js';
import { renderXlsx } from './xlsx.js';

export const REPORT_FORMATS = ['json', 'csv', 'xlsx', 'pdf', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/**
 * Render one report document in one format. The document is checked against
 * the schema first; every writer only lays out what the document holds, so
 * every format shows the same numbers. Deterministic: the same document gives
 * the same bytes in every format. Async because the XLSX and PDF writers
 * (exceljs, pdfkit) produce their bytes asynchronously.
 */
export async function render(doc: ReportDoc, format: ReportFormat): Promise<Buffer> {
  const d = ReportDoc.parse(doc);
  switch (format) {
    case 'json':
      return renderJson(d);
    case 'csv':
      return renderCsv(d);
    case 'html':
      return renderHtml(d);
    case 'xlsx':
      return renderXlsx(d);
    case 'pdf':
      return renderPdf(d);
  }
}
