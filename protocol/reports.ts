import { z } from 'zod';

/**
 * A report as data: what the region pays carriers and schools from. Every
 * report (compensation, attendance, meals, charging, devices, partners) is
 * built as one `ReportDoc`; the writers (JSON, CSV, XLSX, PDF, HTML) only
 * render it, so every format shows the same numbers. Russian first, English
 * second, as on the device's display. People appear by person_id or masked
 * PAN only, never a PAN.
 *
 * The same registry and journal always give the same document, and so the
 * same bytes: no clock inside (the period and `asOf` are parameters), rows in
 * a stated order. `signature` covers the canonical JSON of everything else
 * (`canonicalJson` with `signature` removed): SHA-256 of it, signed with the
 * server's Ed25519 key. `rc-sync-server report verify FILE` checks it.
 */

export const Bilingual = z.object({ ru: z.string(), en: z.string() }).strict();
export type Bilingual = z.infer<typeof Bilingual>;

/** How a column's values are written: kopecks are integers, shown as rubles with two decimals. */
export const ColumnKind = z.enum(['text', 'int', 'kopecks', 'date', 'time', 'percent']);
export type ColumnKind = z.infer<typeof ColumnKind>;

export const Column = z.object({ key: z.string().min(1), title: Bilingual, kind: ColumnKind }).strict();
export type Column = z.infer<typeof Column>;

export const Cell = z.union([z.string(), z.number(), z.null()]);
export type Cell = z.infer<typeof Cell>;
export const Row = z.record(z.string(), Cell);
export type Row = z.infer<typeof Row>;

export const Section = z
  .object({
    id: z.string().min(1),
    title: Bilingual,
    columns: z.array(Column).min(1),
    rows: z.array(Row),
    /** A totals row, in the same columns (text columns may hold a label). */
    totals: Row.optional(),
  })
  .strict();
export type Section = z.infer<typeof Section>;

/** One chart: trips per day per route (compensation), attendance per day (a school). */
export const Chart = z
  .object({
    title: Bilingual,
    kind: z.enum(['line', 'bar']),
    xTitle: Bilingual,
    yTitle: Bilingual,
    /** x values in order (e.g. the days of the month, YYYY-MM-DD). */
    x: z.array(z.string()),
    series: z.array(z.object({ name: z.string(), values: z.array(z.number()) }).strict()),
  })
  .strict();
export type Chart = z.infer<typeof Chart>;

export const REPORT_NAMES = ['compensation', 'attendance', 'meals', 'charging', 'devices', 'partners'] as const;
export const ReportName = z.enum(REPORT_NAMES);
export type ReportName = z.infer<typeof ReportName>;

export const ReportSignature = z
  .object({
    alg: z.literal('ed25519'),
    /** SHA-256 (hex) of the canonical JSON of the document without `signature`. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** Ed25519 signature (base64) over the 32 bytes of that SHA-256. */
    sig: z.string().min(1),
    /** The signing key's SPKI PEM, so a carrier can check it against the one the operator published (GET /v1/public-key). */
    publicKeyPem: z.string().min(1),
  })
  .strict();
export type ReportSignature = z.infer<typeof ReportSignature>;

export const ReportDoc = z
  .object({
    report: ReportName,
    title: Bilingual,
    /** The parameters that made it (month, carrier, school, day, since…), as given. */
    params: z.record(z.string(), z.string()),
    /** The period covered, inclusive local dates. */
    period: z.object({ from: z.string(), to: z.string() }).strict(),
    /** The journal and registry state it was made from (the highest received journal row and list versions), for reproducibility. */
    source: z.record(z.string(), z.union([z.string(), z.number()])),
    sections: z.array(Section),
    charts: z.array(Chart),
    /** Notes shown under the report (what is left out and why, tariff versions used …). */
    notes: z.array(Bilingual),
    signature: ReportSignature.optional(),
  })
  .strict();
export type ReportDoc = z.infer<typeof ReportDoc>;

/** JSON with object keys sorted at every level and no whitespace: the bytes that are hashed and signed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const o = value as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/** Kopecks as rubles with two decimals ("1234.50"); the one formatting of money in every report format. */
export function rubles(kopecks: number): string {
  const sign = kopecks < 0 ? '-' : '';
  const k = Math.abs(Math.trunc(kopecks));
  return `${sign}${Math.floor(k / 100)}.${String(k % 100).padStart(2, '0')}`;
}
