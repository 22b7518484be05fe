import { ReportParams, ReportQuery } from '../../../protocol/api.js';
import { ReportDoc } from '../../../protocol/reports.js';
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import type { Principal } from '../../auth/schema.js';
import { route } from '../route.js';

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
    summary: 'a report (compensation, charging, devices, …) as a signed document',
    description:
      'compensation?month=YYYY-MM[&carrier=ID]; attendance?school=ID&(month=YYYY-MM|day=YYYY-MM-DD); meals?school=ID&month=YYYY-MM; charging?month=YYYY-MM; devices?since=YYYY-MM-DD[&silentHours=24][&asOf=ISO]. ' +
      'A month with no data gives an empty report; an unknown carrier or school is server.not-found (404); a future month or a bad parameter is server.bad-request. ' +
      'The document carries the SHA-256 of its canonical JSON and an Ed25519 signature by the server key (GET /v1/public-key); rc-sync-server report verify FILE checks it. ' +
      'A carrier account reads compensation for its own carrier only, a school account attendance and meals of its own school only (auth.forbidden otherwise). ' +
      'format: json (other formats: rc-sync-server report … --format renders the signed JSON locally).',
    schema: { params: ReportParams, querystring: ReportQuery, response: { 200: ReportDoc } },
    handler: (req, { api, principal }) => {
      const { format, ...asked } = req.query;
      const params = scopeReport(principal, req.params.name, asked);
      // the API answers the signed document; rc-sync-server report --format renders CSV, XLSX, PDF or HTML from it
      if (format !== 'json')
        throw new RcError(ErrorCode.ServerBadRequest, `the HTTP API answers JSON; use rc-sync-server report --format ${format}`, { format });
      return api.report(req.params.name, params);
    },
  }),
];
