import { READERS } from '../../../protocol/roles.js';
import { NotificationsAnswer, NotificationsQuery } from '../../../protocol/api.js';
import { route } from '../route.js';

/** Guardians' notifications (sync-server/notify/): what waits in the outbox and why. */
export const notificationRoutes = [
  route({
    method: 'GET',
    url: '/v1/notifications',
    listeners: ['operator'],
    access: READERS,
    summary: "guardians' messages not delivered yet: pending (with the last failure's reason) and failed for good; counts by state",
    description: 'limit: at most this many messages (1-10000, default 1000), oldest first. No message text is listed: it names the child.',
    schema: { querystring: NotificationsQuery, response: { 200: NotificationsAnswer } },
    handler: (req, { api }) => api.notifications(Math.min(10_000, Math.max(1, Number(req.query.limit ?? 1000) || 1000))),
  }),
];
