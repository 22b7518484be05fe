import { z } from 'zod';
import { READERS } from '../../../protocol/roles.js';
import { route } from '../route.js';

/** Operations (issue 12 item 5): Prometheus metrics and a health check for load balancers. */
export const opsRoutes = [
  route({
    method: 'GET',
    url: '/metrics',
    listeners: ['operator'],
    access: READERS,
    summary: 'Prometheus metrics (text exposition format): taps ingested, devices online, list versions, import durations, charge outcomes, process',
    description:
      'Scrape with an API token of a reading role: rc-sync-server token create --role auditor --name prometheus, then bearer_token_file in the scrape config.',
    schema: { response: { 200: z.string() } },
    handler: async (_req, { ops, http }) => {
      const m = await ops.metrics();
      http.header('content-type', m.contentType);
      return m.text;
    },
  }),
  route({
    method: 'GET',
    url: '/healthz',
    // the enrolment listener keeps its four routes (its load balancer checks /v1/health there)
    listeners: ['operator'],
    access: 'public',
    summary: 'for load balancers: 200 ok, or 503 while the server starts or when its registry cannot be read',
    schema: { response: { 200: z.string() } },
    handler: (_req, { ops, http }) => {
      http.header('content-type', 'text/plain; charset=utf-8');
      if (ops.ready()) return 'ok\n';
      http.status(503);
      return 'unavailable\n';
    },
  }),
];
