import { canonicalJson, type ReportDoc } from '../../../protocol/reports.js';

/** The document as canonical JSON (sorted keys) with a final newline: the signed bytes plus `signature`. */
export function renderJson(doc: ReportDoc): Buffer {
  return Buffer.from(`${canonicalJson(doc)}\n`, 'utf8');
}
