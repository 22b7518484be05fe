import { ReportParams, ReportQuery } from '../../../protocol/api.js';
import { ReportDoc } from '../../../protocol/reports.js';
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import { route } from '../route.js';

/** Reports (docs/reports.md): built from the registry and the journal, signed with the server's key. */
export const reportRoutes = [
  route({
    method: 'GET',
    url: '/v1/reports/:name',
    listeners: ['operator'],
    access: ['admin', 'operator', 'auditor', 'school', 'carrier'],
    summary: 'a report (compensation, charging, devices, …) as a signed document',
    description:
      'compensation?month=YYYY-MM[&carrier=ID]; attendance?school=ID&(month=YYYY-MM|day=YYYY-MM-DD); meals?school=ID&month=YYYY-MM; partners?month=YYYY-MM[&partner=ID]; charging?month=YYYY-MM; devices?since=YYYY-MM-DD[&silentHours=24][&asOf=ISO]. ' +
      'A month with no data gives an empty report; an unknown carrier, school or partner is server.not-found (404); a future month or a bad parameter is server.bad-request. ' +
      'The document carries the SHA-256 of its canonical JSON and an Ed25519 signature by the server key (GET /v1/public-key); rc-sync-server report verify FILE checks it. ' +
      'format: json (other formats: rc-sync-server report … --format renders the signed JSON locally).',
    schema: { params: ReportParams, querystring: ReportQuery, response: { 200: ReportDoc } },
    handler: (req, { api }) => {
      const { format, ...params } = req.query;
      // the API answers the signed document; rc-sync-server report --format renders CSV, XLSX, PDF or HTML from it
      if (format !== 'json')
        throw new RcError(ErrorCode.ServerBadRequest, `the HTTP API answers JSON; use rc-sync-server report --format ${format}`, { format });
      return api.report(req.params.name, params);
    },
  }),
];
