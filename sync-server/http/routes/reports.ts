import { ReportParams, ReportQuery, type ReportFormat } from '../../../protocol/api.js';
import { ReportDoc } from '../../../protocol/reports.js';
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import type { Principal } from '../../auth/schema.js';
import { renderReport } from '../../reports/format.js';
import { FileAnswer, route } from '../route.js';

/** Media type of each report format. */
const CONTENT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pdf: 'application/pdf',
  html: 'text/html; charset=utf-8',
};

/** The file name a download is saved under: report, its parameters (ids and dates only: [A-Za-z0-9_.-]), format. */
export function reportFileName(name: string, params: Record<string, string | undefined>, format: ReportFormat): string {
  const parts = [name, params.carrier, params.school, params.month, params.day, params.since].filter((p): p is string => p !== undefined && p !== '');
  return `${parts.map((p) => p.replace(/[^A-Za-z0-9_.-]/g, '_')).join('-')}.${format}`;
}

/**
 * A scoped caller's report parameters: a carrier gets the compensation of its own routes only (its carrier
 * forced when absent), a school the attendance and meals of its own school only; any other report, or
 * another carrier or school, is auth.forbidden. Admin, operator and auditor read every report.
 */
export function scopeReport(p: Principal | null, name: string, params: Record<string, string | undefined>): Record<string, string | undefined> {
  if (!p || (p.role !== 'carrier' && p.role !== 'school')) return params;
  const own = p.role === 'carrier' ? p.carrier : p.school;
  const allowed = p.role === 'carrier' ? ['compensation'] : ['attendance', 'meals'];
  if (!allowed.includes(name))
    throw new RcError(ErrorCode.AuthForbidden, `a ${p.role} account may not read the ${name} report`, { role: p.role, report: name });
  const asked = params[p.role];
  if (asked !== undefined && asked !== own)
    throw new RcError(ErrorCode.AuthForbidden, `a ${p.role} account reads its own ${p.role}'s reports only`, { role: p.role });
  return { ...params, [p.role]: own };
}

/** Reports (docs/reports.md): built from the registry and the journal, signed with the server's key. */
export const reportRoutes = [
  route({
    method: 'GET',
    url: '/v1/reports/:name',
    listeners: ['operator'],
    access: ['admin', 'operator', 'auditor', 'school', 'carrier'],
    summary: 'a report (compensation, charging, devices, …) as a signed document, or rendered as CSV, XLSX, PDF or HTML',
    description:
      'compensation?month=YYYY-MM[&carrier=ID]; attendance?school=ID&(month=YYYY-MM|day=YYYY-MM-DD); meals?school=ID&month=YYYY-MM; partners?month=YYYY-MM[&partner=ID]; charging?month=YYYY-MM; devices?since=YYYY-MM-DD[&silentHours=24][&asOf=ISO]. ' +
      'A month with no data gives an empty report; an unknown carrier, school or partner is server.not-found (404); a future month or a bad parameter is server.bad-request. ' +
      'The document carries the SHA-256 of its canonical JSON and an Ed25519 signature by the server key (GET /v1/public-key); rc-sync-server report verify FILE checks it. ' +
      'A carrier account reads compensation for its own carrier only, a school account attendance and meals of its own school only (auth.forbidden otherwise). ' +
      'format: json (default) | csv | xlsx | pdf | html: the same bytes rc-sync-server report --format writes, with their Content-Type and a ' +
      'Content-Disposition file name (e.g. compensation-2026-11.pdf).',
    schema: { params: ReportParams, querystring: ReportQuery, response: { 200: ReportDoc } },
    handler: async (req, { api, principal }) => {
      const { format, ...asked } = req.query;
      const params = scopeReport(principal, req.params.name, asked);
      const doc = api.report(req.params.name, params);
      // the same writer as the CLI (reports/format.ts): JSON pretty-printed with its signature, the other formats rendered from it
      return new FileAnswer(await renderReport(doc, format), CONTENT_TYPES[format], reportFileName(req.params.name, params, format));
    },
  }),
];
