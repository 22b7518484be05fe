import type { ReportFormat } from '../../protocol/api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { ReportDoc } from '../../protocol/reports.js';

/**
 * A report in a format: JSON here (pretty, with the signature); the other writers (CSV, XLSX, PDF, HTML)
 * come from reports/render/index.ts `render(doc, format)`. This is the one place that calls them, so
 * wiring them in is one line.
 */
export function renderReport(doc: ReportDoc, format: ReportFormat): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify(doc, null, 2) + '\n', 'utf8');
  throw new RcError(ErrorCode.ServerBadRequest, `format ${format} is not available in this build yet; use --format json`, { format });
}
