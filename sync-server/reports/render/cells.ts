import { rubles, type Column, type ReportDoc, type Row } from '../../../protocol/reports.js';

/**
 * The one way every writer shows a cell: kopecks as rubles with two decimals,
 * percents with one, empty for null. CSV, XLSX, PDF and HTML all call this, so
 * every format shows the same text for the same number.
 */
export function cellText(col: Column, row: Row): string {
  const v = row[col.key];
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (col.kind === 'kopecks') return rubles(v);
  if (col.kind === 'percent') return `${v.toFixed(1)} %`;
  return String(v);
}

/** "Русский / English": the one way a bilingual title is shown in a single cell or line. */
export function bi(t: { ru: string; en: string }): string {
  return t.ru === t.en ? t.ru : `${t.ru} / ${t.en}`;
}

/** The footer lines: SHA-256 and signature, or a plain "not signed" when the document carries none. */
export function footerLines(doc: ReportDoc): string[] {
  const s = doc.signature;
  if (!s) return ['Не подписан / Not signed'];
  return [`SHA-256: ${s.sha256}`, `Ed25519: ${s.sig}`];
}

/** The parameters as one line ("school=S1, month=2026-11"), keys sorted. */
export function paramsLine(doc: ReportDoc): string {
  return Object.keys(doc.params)
    .sort()
    .map((k) => `${k}=${doc.params[k]}`)
    .join(', ');
}

/** The source state as one line, keys sorted. */
export function sourceLine(doc: ReportDoc): string {
  return Object.keys(doc.source)
    .sort()
    .map((k) => `${k}=${String(doc.source[k])}`)
    .join(', ');
}

/** A fixed instant for PDF/XLSX metadata, so the same document gives the same bytes: the end of the period. */
export function fixedDate(doc: ReportDoc): Date {
  const ms = Date.parse(`${doc.period.to}T00:00:00Z`);
  return new Date(Number.isFinite(ms) ? ms : 0);
}
