import { z } from 'zod';
import { AuditAnswer, AuditQuery } from '../../../protocol/auth-api.js';
import { auditCsv, queryAudit } from '../../audit.js';
import { route } from '../route.js';

export const auditRoutes = [
  route({
    method: 'GET',
    url: '/v1/audit',
    listeners: ['operator'],
    access: ['admin', 'auditor'],
    summary: 'the audit log, newest first: who changed what, from where, with what result',
    description:
      'Filters: since/until (ISO time), who (user or token name), action (substring, e.g. import or user.add), limit (default 1000). format=csv answers text/csv for a spreadsheet.',
    schema: { querystring: AuditQuery, response: { 200: z.union([AuditAnswer, z.string()]) } },
    handler: (req, { auth, http }) => {
      const { format, ...q } = req.query;
      const rows = queryAudit(auth.db, q);
      if (format === 'json') return { rows };
      http.header('content-type', 'text/csv; charset=utf-8');
      http.header('content-disposition', 'attachment; filename="audit.csv"');
      return auditCsv(rows);
    },
  }),
];
