import { READERS, WRITERS } from '../../../protocol/roles.js';
import { z } from 'zod';
import { ImportAnswer, ImportKind, ImportQuery, ImportsAnswer, ImportsQuery } from '../../../protocol/api.js';
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import { route } from '../route.js';

export const importRoutes = [
  route({
    method: 'POST',
    url: '/v1/import/:kind',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'import a CSV file (the request body, UTF-8, header row) and publish new list versions',
    description:
      'The body is streamed. A file with a bad row is refused whole (server.import-invalid, 422, with the report) unless skipInvalid=true; a line over 16 KiB, more than 32 columns ' +
      'or a file over 2 GiB is server.import-too-large (413); ' +
      'an upload cut short imports nothing. One import at a time: while one runs, another is import.busy (409) and its upload is not read. ' +
      'The import runs in short transactions; GET /v1/imports shows its progress.',
    csv: true,
    schema: { params: z.object({ kind: ImportKind }), querystring: ImportQuery, response: { 200: ImportAnswer } },
    handler: async (req, { api, audit }) => {
      const raw = req.raw;
      // the raw body, streamed to the CSV parser (its size limits apply before anything big is built);
      // an upload cut short must not import the part that arrived
      const body = (async function* () {
        for await (const chunk of raw) yield chunk as Buffer;
        if (!raw.complete) throw new RcError(ErrorCode.ServerBadRequest, 'upload interrupted: nothing imported');
      })();
      const r = await api.importCsv(req.params.kind, body, req.query.skipInvalid === 'true');
      audit?.({ rows: r.report.rows, applied: r.report.applied, rejected: r.report.rejected });
      return r;
    },
  }),
  route({
    method: 'GET',
    url: '/v1/imports',
    listeners: ['operator'],
    access: READERS,
    summary: 'recent imports, newest first: kind, state (running, done, failed), rows read so far, error',
    description: 'A running import shows the rows read so far; one that failed shows its error code and message. A console polls this while an import runs.',
    schema: { querystring: ImportsQuery, response: { 200: ImportsAnswer } },
    handler: (req, { api }) => api.imports(req.query.limit === undefined ? 50 : Math.min(500, Number(req.query.limit))),
  }),
];
