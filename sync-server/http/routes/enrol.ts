import { READERS, WRITERS } from '../../../protocol/roles.js';
import { z } from 'zod';
import { RevokeAnswer } from '../../../protocol/api.js';
import { DeviceList, EnrolAnswer, EnrolBody, Proof, RotateAnswer, TokenCreateBody, TokenCreated, WhoAmI } from '../../../protocol/enrol.js';
import { DeviceId } from '../../../protocol/ids.js';
import { route } from '../route.js';

const DeviceParams = z.object({ id: DeviceId });

/** Provisioning (docs/provisioning.md): the device-facing routes are also on the enrolment listener. */
export const enrolRoutes = [
  route({
    method: 'POST',
    url: '/v1/enrol-tokens',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'create a one-time enrolment token for a technician',
    schema: { body: TokenCreateBody, response: { 200: TokenCreated } },
    handler: (req, { provisioning }) => provisioning.createToken(req.body),
  }),
  route({
    method: 'POST',
    url: '/v1/enrol',
    listeners: ['operator', 'enrol'],
    access: 'device',
    summary: 'device: its public keys and a one-time token → its identity and sealed secrets',
    schema: { body: EnrolBody, response: { 200: EnrolAnswer } },
    handler: (req, { provisioning }) => provisioning.enrol(req.body),
  }),
  route({
    method: 'POST',
    url: '/v1/devices/:id/rotate',
    listeners: ['operator', 'enrol'],
    access: 'device',
    summary: 'device (signed): a new broker password, sealed',
    schema: { params: DeviceParams, body: Proof, response: { 200: RotateAnswer } },
    handler: (req, { provisioning }) => provisioning.rotate(req.params.id, req.body),
  }),
  route({
    method: 'POST',
    url: '/v1/devices/:id/whoami',
    listeners: ['operator', 'enrol'],
    access: 'device',
    summary: 'device (signed): is this identity still valid?',
    schema: { params: DeviceParams, body: Proof, response: { 200: WhoAmI } },
    handler: (req, { provisioning }) => provisioning.whoami(req.params.id, req.body),
  }),
  route({
    method: 'GET',
    url: '/v1/devices',
    listeners: ['operator'],
    access: READERS,
    summary: 'enrolled devices',
    schema: { response: { 200: DeviceList } },
    handler: (_req, { provisioning }) => ({ devices: provisioning.registry.list() }),
  }),
  route({
    method: 'POST',
    url: '/v1/devices/:id/revoke',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'cut a device off at once: its broker credentials stop working and it is disconnected',
    schema: { params: DeviceParams, response: { 200: RevokeAnswer } },
    handler: (req, { provisioning }) => provisioning.revoke(req.params.id),
  }),
];
