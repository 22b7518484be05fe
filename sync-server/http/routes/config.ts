import { WRITERS } from '../../../protocol/roles.js';
import { ConfigAnswer, ConfigBody } from '../../../protocol/api.js';
import { route } from '../route.js';

export const configRoutes = [
  route({
    method: 'POST',
    url: '/v1/config',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'publish a rules document (tariff / school / canteen) to devices as rc/v1/config/<name>',
    schema: { body: ConfigBody, response: { 200: ConfigAnswer } },
    handler: async (req, { api, audit }) => {
      const r = await api.setConfig(req.body.name, req.body.rules);
      audit?.({ name: r.name, version: r.version });
      return r;
    },
  }),
];
