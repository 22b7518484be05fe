import { z } from 'zod';
import { TokenCreateBody } from '../../../protocol/enrol.js';
import {
  ConfigDoc,
  ConfigParams,
  ConfigValidateAnswer,
  ConfigValidateBody,
  DeviceDetail,
  DeviceParams,
  EnrolQrAnswer,
  FleetQuery,
  FleetWire,
  JournalSearchAnswer,
  JournalSearchBody,
  ListsAnswer,
  StopAddAnswer,
  StopAddBody,
  StopListAnswer,
  StopRemoveAnswer,
  StopRemoveBody,
} from '../../../protocol/console-api.js';
import { READERS, WRITERS, type Role } from '../../../protocol/roles.js';
import { minutesParam, DEFAULT_FLEET_POLICY } from '../../console/fleet.js';
import { FileAnswer, route, type HandlerContext } from '../route.js';

/** A school account sees its own school only (an account without its school id sees nothing). */
const schoolOf = (ctx: HandlerContext): string | undefined => (ctx.principal?.role === 'school' ? (ctx.principal.school ?? '') : undefined);

const FLEET_READERS: readonly Role[] = [...READERS, 'school'];

/** The operator console's JSON routes (issue 12): what the pages need beyond the rest of the API. */
export const consoleRoutes = [
  route({
    method: 'GET',
    url: '/v1/console/fleet',
    listeners: ['operator'],
    access: FLEET_READERS,
    summary: 'every device with its alarms: silent, list older than policy, backlog growing, revoked',
    description:
      'silent: offline (its last will) or not heard of for silentMinutes (default 60); list-old: holds an older version of a list published ' +
      'more than listMaxAgeMinutes ago (default 60); backlog-growing: its last three status reports each show a larger journal backlog. ' +
      'A school account sees its own school only. Rows are compact: a field that is null, false, 0 or empty is left out, and `lists` gives ' +
      'the version each device holds (the current one is in `current`); protocol/fleet-rows.ts expands a row.',
    schema: { querystring: FleetQuery, response: { 200: FleetWire } },
    handler: (req, ctx) => {
      const answer: FleetWire = ctx.console.fleet(
        {
          silentMinutes: minutesParam(req.query.silentMinutes, DEFAULT_FLEET_POLICY.silentMinutes),
          listMaxAgeMinutes: minutesParam(req.query.listMaxAgeMinutes, DEFAULT_FLEET_POLICY.listMaxAgeMinutes),
        },
        schoolOf(ctx),
      );
      // built from typed rows (console/fleet.ts): serialised as is, not checked row by row against the schema (10,000 devices ≤ 1 s)
      return new FileAnswer(Buffer.from(JSON.stringify(answer)), 'application/json; charset=utf-8', null);
    },
  }),
  route({
    method: 'GET',
    url: '/v1/console/devices/:id',
    listeners: ['operator'],
    access: FLEET_READERS,
    summary: 'one device: its fleet row, its latest status reports and journal entries (newest first)',
    description: 'server.not-found (404) for an unknown device, or one of another school for a school account.',
    schema: { params: DeviceParams, response: { 200: DeviceDetail } },
    handler: (req, ctx) => ctx.console.device(req.params.id, schoolOf(ctx)),
  }),
  route({
    method: 'GET',
    url: '/v1/console/lists',
    listeners: ['operator'],
    access: READERS,
    summary: 'list scopes: current version, entries, when published, the versions kept; the rules documents',
    schema: { response: { 200: ListsAnswer } },
    handler: (_req, ctx) => ctx.console.lists(),
  }),
  route({
    method: 'GET',
    url: '/v1/config/:name',
    listeners: ['operator'],
    access: READERS,
    summary: 'the current rules document of that name (server.not-found when none was published)',
    schema: { params: ConfigParams, response: { 200: ConfigDoc } },
    handler: (req, ctx) => ctx.console.config(req.params.name),
  }),
  route({
    method: 'POST',
    url: '/v1/config/validate',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'check a rules document against the schema POST /v1/config uses; nothing is published (config.invalid with the issues)',
    schema: { body: ConfigValidateBody, response: { 200: ConfigValidateAnswer } },
    handler: (req, ctx) => ctx.console.validateConfig(req.body.name, req.body.rules),
  }),
  route({
    method: 'GET',
    url: '/v1/stoplist',
    listeners: ['operator'],
    access: READERS,
    summary: 'the stop-list, newest first: token, masked PAN (for cards blocked by number in the console), reason, since',
    schema: { querystring: z.object({ limit: z.string().optional() }), response: { 200: StopListAnswer } },
    handler: (req, ctx) => ctx.console.stopList(Math.min(10_000, Math.max(1, Number(req.query.limit ?? 1000) || 1000))),
  }),
  route({
    method: 'POST',
    url: '/v1/stoplist',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'block a lost card by its number: tokenised in memory (never stored, logged or answered), published on the stop-list',
    description:
      'The token is PAN ‖ the printed expiry (MM/YY). The answer carries the masked PAN and the first 8 digits of the token only. card.bad-pan for a number that fails the check digit, card.bad-expiry / card.missing-data for a malformed or missing expiry.',
    schema: { body: StopAddBody, response: { 200: StopAddAnswer } },
    handler: async (req, ctx) => {
      const r = await ctx.console.stopAdd(req.body.pan, { expiry: req.body.expiry, psn: req.body.psn }, req.body.reason);
      ctx.audit?.({ tokenPrefix: r.tokenPrefix, masked: r.masked, reason: r.reason });
      return r;
    },
  }),
  route({
    method: 'POST',
    url: '/v1/stoplist/remove',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'take a card off the stop-list by its token; a new stop-list version is published',
    schema: { body: StopRemoveBody, response: { 200: StopRemoveAnswer } },
    handler: (req, ctx) => ctx.console.stopRemove(req.body.token),
  }),
  route({
    method: 'POST',
    url: '/v1/journal/search',
    listeners: ['operator'],
    access: FLEET_READERS,
    summary: 'journal entries by device, route, time range and result, or by a card (its number in the body, tokenised by the server), newest first',
    description: 'A school account sees its own devices only. The answer names the card by masked PAN and token prefix, never the number.',
    schema: { body: JournalSearchBody, response: { 200: JournalSearchAnswer } },
    handler: (req, ctx) => {
      const school = schoolOf(ctx);
      return ctx.console.searchJournal(req.body, school !== undefined ? ctx.console.schoolDevices(school) : undefined);
    },
  }),
  route({
    method: 'POST',
    url: '/v1/console/enrol-tokens',
    listeners: ['operator'],
    access: WRITERS,
    summary: 'create a one-time enrolment token, with its QR code (SVG) for the technician',
    schema: { body: TokenCreateBody, response: { 200: EnrolQrAnswer } },
    handler: (req, ctx) => ctx.console.enrolQr(req.body),
  }),
];
