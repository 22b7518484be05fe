import { z } from 'zod';
import { ConfigName, JournalRow, Versions } from './api.js';
import { expandFleetRow } from './fleet-rows.js';
import { DeviceId } from './ids.js';
import { TokenHex } from './lists.js';

/**
 * The JSON routes the operator console's pages call (sync-server/http/routes/console.ts), on top of the
 * API of protocol/api.ts. PANs go in POST bodies only (stop-list, journal search by card): the server
 * tokenises them in memory and answers the masked PAN and a token prefix, never the PAN.
 *
 *   GET  /v1/console/fleet?silentMinutes=&listMaxAgeMinutes=   every device with its alarms
 *   GET  /v1/console/devices/:id                               one device: status history, latest journal
 *   GET  /v1/console/lists                                     scopes, versions, entries, when published
 *   GET  /v1/config/:name                                      the current rules document
 *   POST /v1/config/validate                                   check a rules document, change nothing
 *   GET  /v1/stoplist | POST /v1/stoplist | POST /v1/stoplist/remove
 *   POST /v1/journal/search                                    by device, route, time range, result, or a card
 *   POST /v1/console/enrol-tokens                              an enrolment token with its QR code (SVG)
 */

/** Why a device needs attention on the fleet page. */
export const ALARMS = ['silent', 'list-old', 'backlog-growing', 'revoked'] as const;
export const Alarm = z.enum(ALARMS);
export type Alarm = z.infer<typeof Alarm>;

/** Minutes, as a query parameter (a bad value counts as the default). */
const Minutes = z.string().optional();
export const FleetQuery = z.object({ silentMinutes: Minutes, listMaxAgeMinutes: Minutes });
export type FleetQuery = z.infer<typeof FleetQuery>;

export const FleetDevice = z
  .object({
    id: z.string(),
    kind: z.string().nullable(),
    school: z.string().nullable(),
    route: z.string().nullable(),
    vehicle: z.string().nullable(),
    /** From the device's status and its last will; false once revoked. */
    online: z.boolean(),
    lastSeen: z.string().nullable(),
    enrolledAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    /** Scope → the version the device holds and the current one. */
    lists: z.record(z.string(), z.object({ device: z.number().int(), current: z.number().int() }).strict()),
    backlog: z.number().int(),
    /** The card reader's state as the device last reported it (null: never reported). */
    reader: z.string().nullable(),
    alarms: z.array(Alarm),
  })
  .strict();
export type FleetDevice = z.infer<typeof FleetDevice>;

/**
 * A device on the fleet page as the answer carries it: only what is not null or default (10,000 devices ≤ 1 s on
 * the page). Left out: kind, school, route, vehicle, lastSeen, enrolledAt, revokedAt and reader when null, online
 * when false, backlog when 0, alarms when none, lists when the device holds none. `lists` is scope → the version the
 * device holds; the current version is the answer's `current`. protocol/fleet-rows.ts expands a row to a FleetDevice.
 */
export const FleetRow = z
  .object({
    id: z.string(),
    kind: z.string().optional(),
    school: z.string().optional(),
    route: z.string().optional(),
    vehicle: z.string().optional(),
    online: z.literal(true).optional(),
    lastSeen: z.string().optional(),
    enrolledAt: z.string().optional(),
    revokedAt: z.string().optional(),
    lists: z.record(z.string(), z.number().int()).optional(),
    backlog: z.number().int().optional(),
    reader: z.string().optional(),
    alarms: z.array(Alarm).optional(),
  })
  .strict();
export type FleetRow = z.infer<typeof FleetRow>;

/** GET /v1/console/fleet as it is sent: compact rows (FleetRow), sorted by id. */
export const FleetWire = z
  .object({
    at: z.string(),
    current: Versions,
    policy: z.object({ silentMinutes: z.number().int(), listMaxAgeMinutes: z.number().int() }).strict(),
    devices: z.array(FleetRow),
  })
  .strict();
export type FleetWire = z.infer<typeof FleetWire>;

/** The fleet answer read by a client: the wire form with every row expanded to a full FleetDevice. */
export const FleetAnswer = FleetWire.transform((w) => ({ ...w, devices: w.devices.map((r) => expandFleetRow(r, w.current)) }));
export type FleetAnswer = z.output<typeof FleetAnswer>;

export const StatusReport = z
  .object({ at: z.string(), online: z.boolean(), backlog: z.number().int(), lists: z.record(z.string(), z.number().int()), reader: z.string().nullable() })
  .strict();
export type StatusReport = z.infer<typeof StatusReport>;

export const DeviceParams = z.object({ id: DeviceId });
export const DeviceDetail = z
  .object({
    device: FleetDevice,
    /** The latest status reports, newest first (at most 100). */
    history: z.array(StatusReport),
    /** The latest journal entries, newest first (at most 100). */
    journal: z.array(JournalRow),
  })
  .strict();
export type DeviceDetail = z.infer<typeof DeviceDetail>;

export const ListVersion = z.object({ version: z.number().int(), records: z.number().int(), publishedAt: z.string() }).strict();
export const ScopeInfo = z
  .object({
    scope: z.string(),
    version: z.number().int(),
    entries: z.number().int(),
    records: z.number().int(),
    updatedAt: z.string(),
    /** The versions still kept as deltas, newest first (at most 20). */
    versions: z.array(ListVersion),
  })
  .strict();
export const ListsAnswer = z
  .object({
    scopes: z.array(ScopeInfo),
    configs: z.array(z.object({ name: z.string(), version: z.number().int(), updatedAt: z.string() }).strict()),
  })
  .strict();
export type ListsAnswer = z.infer<typeof ListsAnswer>;

export const ConfigParams = z.object({ name: ConfigName });
export const ConfigDoc = z.object({ name: z.string(), version: z.number().int(), updatedAt: z.string(), rules: z.unknown() }).strict();
export type ConfigDoc = z.infer<typeof ConfigDoc>;
/** A rules document to check: anything JSON (the check is the point). */
export const ConfigValidateBody = z.object({ name: ConfigName.default('rules'), rules: z.unknown() });
export const ConfigValidateAnswer = z.object({ ok: z.literal(true), name: z.string() }).strict();

/** A card number as typed: 12 to 19 digits (spaces allowed between groups); never stored, logged or echoed. */
export const PanInput = z
  .string()
  .max(40)
  .transform((s) => s.replace(/[\s-]/g, ''))
  .pipe(z.string().regex(/^\d{12,19}$/, 'a card number is 12 to 19 digits'));
export const Psn = z.string().regex(/^[0-9A-Fa-f]{2}$/, 'PSN: two hex digits');
/** The expiry printed on the card as typed (MM/YY, MMYY, MM/YYYY, MM.YY; parsed by protocol/pan.ts parseTypedExpiry): part of the card's token. */
export const ExpiryInput = z.string().trim().min(4).max(10);

export const StopAddBody = z.object({ pan: PanInput, expiry: ExpiryInput.optional(), psn: Psn.optional(), reason: z.string().min(1).max(64).default('lost') });
export const StopRemoveBody = z.object({ token: TokenHex });
export const StopEntry = z
  .object({ token: z.string(), tokenPrefix: z.string(), masked: z.string().nullable(), reason: z.string(), since: z.string() })
  .strict();
export type StopEntry = z.infer<typeof StopEntry>;
export const StopListAnswer = z.object({ entries: z.array(StopEntry), total: z.number().int() }).strict();
export const StopAddAnswer = z
  .object({ masked: z.string(), tokenPrefix: z.string(), reason: z.string(), since: z.string(), version: z.number().int() })
  .strict();
export const StopRemoveAnswer = z.object({ removed: z.boolean(), version: z.number().int() }).strict();

const IsoOrDate = z.string().regex(/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/, 'a date (YYYY-MM-DD) or an ISO time');
export const JournalSearchBody = z
  .object({
    device: z.string().max(64).optional(),
    route: z.string().max(64).optional(),
    /** Effective time from (inclusive) / to (exclusive). */
    from: IsoOrDate.optional(),
    to: IsoOrDate.optional(),
    result: z.string().max(32).optional(),
    /** A card: its number, tokenised by the server in memory. */
    pan: PanInput.optional(),
    /** The card's printed expiry (its token is PAN ‖ expiry); psn only under a key version from before the migration. */
    expiry: ExpiryInput.optional(),
    psn: Psn.optional(),
    limit: z.number().int().min(1).max(10_000).default(500),
  })
  .strict();
export type JournalSearchBody = z.infer<typeof JournalSearchBody>;
export const JournalSearchAnswer = z
  .object({ entries: z.array(JournalRow), card: z.object({ masked: z.string(), tokenPrefix: z.string() }).strict().nullable() })
  .strict();
export type JournalSearchAnswer = z.infer<typeof JournalSearchAnswer>;

export const EnrolQrAnswer = z
  .object({
    token: z.string(),
    id: z.string(),
    kind: z.string(),
    school: z.string().nullable(),
    route: z.string().nullable(),
    expiresAt: z.string(),
    /** The token as a QR code (SVG), for the technician's phone or rc-provision. */
    qrSvg: z.string(),
  })
  .strict();
