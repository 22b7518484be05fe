import type { ReportFormat } from '../../protocol/api.js';
import type { ReportDoc } from '../../protocol/reports.js';
import { render } from './render/index.js';

/**
 * A report in a format: JSON pretty-printed with its signature (what `report verify` reads); CSV, XLSX, PDF
 * and HTML from the writers in reports/render/ (the same numbers, the signature in the footer).
 */
export async function renderReport(doc: ReportDoc, format: ReportFormat): Promise<Buffer> {
  if (format === 'json') return Buffer.from(JSON.stringify(doc, null, 2) + '\n', 'utf8');
  return render(doc, format);
}
