import { READERS } from '../../../protocol/roles.js';
import { Health, PublicKey, StatusAnswer } from '../../../protocol/api.js';
import { route } from '../route.js';

/** The server itself: health (both listeners), the list-signing key, device status. */
export const serverRoutes = [
  route({
    method: 'GET',
    url: '/v1/health',
    listeners: ['operator', 'enrol'],
    access: 'public',
    summary: 'the server is up; current list versions (operator listener: also the broker it uses)',
    schema: { response: { 200: Health } },
    handler: (_req, { api, listener }) => {
      const info = api.info();
      return listener === 'operator' ? info : { ok: true as const, versions: info.versions };
    },
  }),
  route({
    method: 'GET',
    url: '/v1/public-key',
    listeners: ['operator'],
    access: 'public',
    summary: 'the public key devices check list signatures with (PEM)',
    schema: { response: { 200: PublicKey } },
    handler: (_req, { api }) => ({ pem: api.publicKeyPem }),
  }),
  route({
    method: 'GET',
    url: '/v1/status',
    listeners: ['operator'],
    access: READERS,
    summary: 'every device: online, last seen, list versions held vs current, journal backlog',
    schema: { response: { 200: StatusAnswer } },
    handler: (_req, { api }) => api.status(),
  }),
];
