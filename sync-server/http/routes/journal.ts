import { READERS } from '../../../protocol/roles.js';
import { JournalAnswer, JournalQuery, journalLimit } from '../../../protocol/api.js';
import { route } from '../route.js';

export const journalRoutes = [
  route({
    method: 'GET',
    url: '/v1/journal',
    listeners: ['operator'],
    access: READERS,
    summary: 'taps received from devices with both decisions (device and back office), in order of arrival (or of sequence for one device)',
    schema: { querystring: JournalQuery, response: { 200: JournalAnswer } },
    handler: (req, { api }) => api.journal(req.query.device, journalLimit(req.query.limit), req.query.flagged === '1'),
  }),
];
