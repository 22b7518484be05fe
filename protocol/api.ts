import { z } from 'zod';
import { TokenHex } from './lists.js';
import { ReportName } from './reports.js';
import { RulesFile } from './rules-schema.js';

/**
 * The sync-server's HTTP API: request bodies and answers, declared once. The
 * server's routes (sync-server/http/routes/) validate with these and the
 * operator's CLI (sync-server/commands/) parses every answer with them. The
 * enrolment routes use protocol/enrol.ts. docs/openapi.yaml is generated from
 * the routes (npm run docs:openapi).
 *
 *   GET  /v1/health                 both listeners: list versions (operator: also the broker)
 *   GET  /v1/public-key             the list-signing public key (PEM)
 *   GET  /v1/status                 devices: online, last seen, list versions, backlog
 *   GET  /v1/journal?device=&limit= taps received from devices
 *   POST /v1/import/<kind>          body: the CSV (streamed), ?skipInvalid=true (one import at a time: else import.busy)
 *   GET  /v1/imports?limit=         recent imports, newest first: state, rows read, error
 *   POST /v1/config                 publish a rules document
 *   POST /v1/charging/run|decline|repay
 *   GET  /v1/reports/<name>?month=&carrier=&since=&format=   a signed report document
 *   GET  /v1/notifications?limit=   guardians' messages not delivered yet (pending, failed) and counts
 */

/** Every error answer: `{ error: { code, message, context? } }`, the code one of protocol/errors.ts (or `server.internal`). */
export const ErrorAnswer = z
  .object({ error: z.object({ code: z.string(), message: z.string(), context: z.record(z.string(), z.unknown()).optional() }) })
  .meta({ id: 'ErrorAnswer', description: 'a coded error: the code is in the README error table' });
export type ErrorAnswer = z.infer<typeof ErrorAnswer>;

/** List scope → current version. */
export const Versions = z.record(z.string(), z.number().int());
export type Versions = z.infer<typeof Versions>;

export const Health = z
  .object({
    ok: z.literal(true),
    versions: Versions,
    /** Operator listener only: the broker the server uses, and whether it is the embedded one. */
    mqtt: z.string().optional(),
    embedded: z.boolean().optional(),
  })
  .strict();
export type Health = z.infer<typeof Health>;

export const PublicKey = z.object({ pem: z.string() }).strict();
export type PublicKey = z.infer<typeof PublicKey>;

export const DeviceSyncStatus = z
  .object({
    id: z.string(),
    online: z.boolean(),
    lastSeen: z.string().nullable(),
    lists: z.record(z.string(), z.object({ device: z.number().int(), current: z.number().int() }).strict()),
    backlog: z.number().int(),
    reader: z.string().nullable(),
  })
  .strict();
export const StatusAnswer = z
  .object({
    current: Versions,
    devices: z.array(DeviceSyncStatus),
    /** Guardians' messages not delivered yet: pending (waiting or retrying) and failed for good (GET /v1/notifications lists them). */
    notifications: z.object({ pending: z.number().int(), failed: z.number().int() }).strict().optional(),
  })
  .strict();
export type StatusAnswer = z.infer<typeof StatusAnswer>;

export const JournalQuery = z.object({
  device: z.string().optional(),
  /** 1…100000, default 1000 (anything else counts as the default). */
  limit: z.string().optional(),
  /** `1`: only the entries left out of settlement (unknown route, time far off). */
  flagged: z.enum(['0', '1']).optional(),
});
const JOURNAL_DEFAULT_LIMIT = 1000;
const JOURNAL_MAX_LIMIT = 100_000;
/** The journal's `limit` parameter as the server reads it. */
export function journalLimit(v: string | undefined): number {
  return Math.min(JOURNAL_MAX_LIMIT, Math.max(1, Number(v ?? JOURNAL_DEFAULT_LIMIT) || JOURNAL_DEFAULT_LIMIT));
}

/** One journal entry as the server lists it: the device's decision (`reason`, `fareKopecks`) and the back office's (`settled`). */
export const JournalRow = z
  .object({
    time: z.string(),
    effectiveTime: z.string(),
    serviceDay: z.string(),
    device: z.string(),
    seq: z.number().int(),
    token: z.string().nullable(),
    kind: z.string(),
    result: z.string(),
    reason: z.string(),
    fareKopecks: z.number().int(),
    /** Same as fareKopecks (the name of earlier versions). */
    fare: z.number().int(),
    benefit: z.string().nullable(),
    route: z.string().nullable(),
    vehicle: z.string().nullable(),
    direction: z.string().nullable(),
    reader: z.string().nullable(),
    meal: z.string().nullable(),
    flags: z.array(z.string()),
    lists: z.record(z.string(), z.number().int()),
    /** The back office's decision; null while not settled yet, or when left out (see `flagged`). */
    settled: z.object({ fareKopecks: z.number().int(), reason: z.string() }).strict().nullable(),
    /** Why the entry is left out of settlement (settlement.unknown-route, settlement.time-out-of-range), else null. */
    flagged: z.string().nullable(),
  })
  .strict();
export type JournalRow = z.infer<typeof JournalRow>;
export const JournalAnswer = z.object({ entries: z.array(JournalRow) }).strict();
export type JournalAnswer = z.infer<typeof JournalAnswer>;

export const IMPORT_KINDS = ['cards', 'benefits', 'enrolments', 'stoplist', 'routes', 'partners', 'guardians'] as const;
export const ImportKind = z.enum(IMPORT_KINDS);
export type ImportKind = z.infer<typeof ImportKind>;
export const ImportQuery = z.object({ skipInvalid: z.string().optional() });

export const RowError = z.object({ line: z.number().int(), column: z.string(), reason: z.string() }).strict();
export type RowError = z.infer<typeof RowError>;
export const ImportReport = z
  .object({
    kind: ImportKind,
    rows: z.number().int(),
    applied: z.number().int(),
    rejected: z.number().int(),
    /** The first 100. */
    errors: z.array(RowError),
  })
  .strict();
export type ImportReport = z.infer<typeof ImportReport>;
export const ImportAnswer = z.object({ report: ImportReport, versions: Versions }).strict();
export type ImportAnswer = z.infer<typeof ImportAnswer>;

/** One import as GET /v1/imports shows it (the newest first); `rows` grows while the file is read. */
export const ImportState = z.enum(['running', 'done', 'failed']);
export const ImportRecord = z
  .object({
    id: z.number().int(),
    kind: ImportKind,
    state: ImportState,
    /** Rows read so far (the whole file once read). */
    rows: z.number().int(),
    /** Rows applied and rows refused (known once the file is read). */
    applied: z.number().int().optional(),
    rejected: z.number().int().optional(),
    startedAt: z.string(),
    finishedAt: z.string().optional(),
    /** A failed import: its error code (protocol/errors.ts) and what happened. */
    error: z.string().optional(),
    message: z.string().optional(),
  })
  .strict();
export type ImportRecord = z.infer<typeof ImportRecord>;
/** `limit`: how many of the newest imports (1-500, default 50). */
export const ImportsQuery = z.object({
  limit: z
    .string()
    .regex(/^[1-9]\d{0,2}$/, 'limit: 1-500')
    .optional(),
});
export const ImportsAnswer = z.array(ImportRecord);
export type ImportsAnswer = z.infer<typeof ImportsAnswer>;

export const ConfigName = z.string().regex(/^[a-z0-9_-]{1,64}$/);
export const ConfigBody = z.object({ name: ConfigName.default('rules'), rules: RulesFile });
export type ConfigBody = z.infer<typeof ConfigBody>;
export const ConfigAnswer = z.object({ name: z.string(), version: z.number().int() }).strict();
export type ConfigAnswer = z.infer<typeof ConfigAnswer>;

export const ChargesQuery = z.object({
  status: z.enum(['pending', 'charged', 'declined', 'repaid', 'v1']).optional(),
  limit: z.string().optional(),
});
/** One aggregated charge: one card, one closed service day, the back office's settled amount. */
export const ChargeRow = z
  .object({
    token: z.string(),
    serviceDay: z.string(),
    amountKopecks: z.number().int(),
    taps: z.number().int(),
    /** pending | charged | declined | repaid | v1 (charged tap by tap before aggregation) */
    status: z.string(),
    reason: z.string().nullable(),
  })
  .strict();
export type ChargeRow = z.infer<typeof ChargeRow>;
export const ChargesAnswer = z.object({ charges: z.array(ChargeRow) }).strict();
export type ChargesAnswer = z.infer<typeof ChargesAnswer>;

export const ChargingRunAnswer = z.object({ declined: z.number().int() }).strict();
export type ChargingRunAnswer = z.infer<typeof ChargingRunAnswer>;
export const DeclineBody = z.object({ tokens: z.array(TokenHex).max(100_000) });
export const OkAnswer = z.object({ ok: z.literal(true) }).strict();
export const RepayBody = z.object({ token: TokenHex });
export const RepayAnswer = z.object({ settled: z.number().int(), unblocked: z.boolean() }).strict();
export type RepayAnswer = z.infer<typeof RepayAnswer>;

export const RevokeAnswer = z.object({ id: z.string(), revokedAt: z.string() }).strict();
export type RevokeAnswer = z.infer<typeof RevokeAnswer>;

// reports (issue 11; docs/reports.md): GET /v1/reports/:name?month=…&format=…
export const REPORT_FORMATS = ['json', 'csv', 'xlsx', 'pdf', 'html'] as const;
export const ReportFormat = z.enum(REPORT_FORMATS);
export type ReportFormat = z.infer<typeof ReportFormat>;
export const ReportParams = z.object({ name: ReportName });
/** The parameters of every report; each report reads its own (compensation: month, carrier; charging: month; devices: since, silentHours, asOf). */
export const ReportQuery = z.object({
  month: z.string().optional(),
  carrier: z.string().optional(),
  school: z.string().optional(),
  /** partners: one partner. */
  partner: z.string().optional(),
  day: z.string().optional(),
  since: z.string().optional(),
  silentHours: z.string().optional(),
  asOf: z.string().optional(),
  format: ReportFormat.default('json'),
});
export type ReportQuery = z.infer<typeof ReportQuery>;

// notifications to guardians (issue 14 item 2; sync-server/notify/): GET /v1/notifications
export const NotificationsQuery = z.object({ limit: z.string().optional() });
/** One message of the outbox that is not delivered: pending (with the reason of the last failure, if any) or failed for good. */
export const NotificationRow = z
  .object({
    key: z.string(),
    guardian: z.string(),
    person: z.string(),
    event: z.string(),
    /** pending | failed */
    state: z.string(),
    attempts: z.number().int(),
    nextAttempt: z.string().nullable(),
    lastError: z.string().nullable(),
    created: z.string(),
    sent: z.string().nullable(),
  })
  .strict();
export const NotificationsAnswer = z
  .object({
    counts: z.object({ pending: z.number().int(), sent: z.number().int(), failed: z.number().int(), cancelled: z.number().int() }).strict(),
    messages: z.array(NotificationRow),
  })
  .strict();
export type NotificationsAnswer = z.infer<typeof NotificationsAnswer>;
