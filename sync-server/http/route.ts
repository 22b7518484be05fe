import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import type {
  ChargesAnswer,
  ConfigAnswer,
  Health,
  ImportAnswer,
  ImportKind,
  ImportsAnswer,
  JournalAnswer,
  NotificationsAnswer,
  RepayAnswer,
  StatusAnswer,
} from '../../protocol/api.js';
import type { ReportDoc, ReportName } from '../../protocol/reports.js';
import type { Access } from '../../protocol/roles.js';
import type { Principal } from '../auth/schema.js';
import type { Auth } from '../auth/service.js';
import type { CsvSource } from '../csv.js';
import type { ConsoleApi } from '../console/api.js';
import type { Provisioning } from '../enrol.js';
import type { BankService } from '../bank/service.js';
import type { PortalApi } from '../portal/queries.js';
import type { Cabinet } from '../cabinet/service.js';
import type { Holder } from '../cabinet/sessions.js';

/**
 * The two listeners: the operator's API on loopback, and the device-facing
 * enrolment listener (`--enrol-listen`), which serves only what a device needs
 * to enrol and to prove itself (enrol, rotate, whoami, health).
 */
export type Listener = 'operator' | 'enrol' | 'public' | 'bank';

/** What the HTTP API needs from the running server (sync-server/start/services.ts builds it). */
export interface Api {
  importCsv(kind: ImportKind, csv: CsvSource, skipInvalid: boolean): Promise<ImportAnswer>;
  /** The newest imports first (running, done, failed). */
  imports(limit?: number): ImportsAnswer;
  status(): StatusAnswer;
  journal(device: string | undefined, limit: number, flagged?: boolean): JournalAnswer;
  charges(status: string | undefined, limit: number): ChargesAnswer;
  setConfig(name: string, rules: unknown): Promise<ConfigAnswer>;
  chargingRun(): Promise<{ declined: number }>;
  chargingDecline(tokens: string[]): void;
  repay(token: string): Promise<RepayAnswer>;
  /** A report built from the registry now, signed with the server's key (sync-server/reports/). */
  report(name: ReportName, params: Record<string, string | undefined>): ReportDoc;
  publicKeyPem: string;
  info(): Health;
  /** Guardians' messages not delivered yet, and counts by state (sync-server/notify/). */
  notifications(limit: number): NotificationsAnswer;
}

export interface HttpContext {
  api: Api;
  provisioning: Provisioning;
  /** The operator console's queries and actions (sync-server/console/api.ts). */
  console: ConsoleApi;
  /** Accounts: sessions, API tokens, the audit log (sync-server/auth/). */
  auth: Auth;
  /** Operations: readiness for /healthz and the Prometheus exposition for /metrics (sync-server/metrics.ts). */
  ops: { ready(): boolean; metrics(): Promise<{ contentType: string; text: string }> };
  /** The bank API (sync-server/bank/), when the server runs it. */
  bank?: BankService;
  /** The public portal's queries (sync-server/portal/); absent: its routes answer server.not-found. */
  portal?: PortalApi;
  /** The cardholder's cabinet (sync-server/cabinet/), when the server has an identity provider configured. */
  cabinet?: Cabinet | null;
}

/** What a handler may do to the HTTP exchange beyond answering its body: cookies (sign-in) and the answer's content type (text answers). */
export interface Exchange {
  /** The client's address. */
  ip: string;
  cookie(name: string): string | undefined;
  /** Set (maxAgeSec > 0) or clear (0) a cookie: always HttpOnly, Path=/, Secure; SameSite=Strict unless `lax` (the cabinet's, set on a sign-in redirect). */
  setCookie(name: string, value: string, maxAgeSec: number, o?: { lax?: boolean }): void;
  /** A header of the answer, e.g. content-type for a text answer (the handler then returns a string). */
  header(name: string, value: string): void;
  /** The answer's status code when it is not 200 (e.g. 503 from /healthz). */
  status(code: number): void;
}

/** What a handler sees besides the request: the server, the listener, who calls (null on 'public' and 'device' routes), the audit detail hook. */
export type HandlerContext = HttpContext & {
  listener: Listener;
  principal: Principal | null;
  /** The signed-in cardholder on 'holder' routes (null elsewhere). */
  holder: Holder | null;
  /** Add detail to this call's audit row (written for successful non-GET calls on role routes); never a PAN. */
  audit?: (detail: Record<string, unknown>) => void;
  http: Exchange;
};

interface Schemas {
  body?: z.ZodType;
  querystring?: z.ZodType;
  params?: z.ZodType;
  response: { 200: z.ZodType };
}
type Out<T> = T extends z.ZodType ? z.output<T> : undefined;

/** What a handler sees of a request: the validated parts, and the raw stream (CSV uploads). */
export interface RouteRequest<S extends Schemas> {
  body: Out<S['body']>;
  query: Out<S['querystring']>;
  params: Out<S['params']>;
  raw: IncomingMessage;
}

/**
 * An answer sent as it is rather than serialised from the 200 schema: report files (with the file name a
 * browser saves them under, Content-Disposition), or a large JSON answer already built from typed data
 * (the console's fleet: checking 10,000 rows against the schema on the way out costs more than building them).
 */
export class FileAnswer {
  constructor(
    readonly bytes: Buffer,
    readonly contentType: string,
    /** null: shown, not downloaded (no Content-Disposition). */
    readonly fileName: string | null,
  ) {}
}

/** One row of the route table. */
export interface Route<S extends Schemas = Schemas> {
  method: 'GET' | 'POST';
  url: string;
  /** Which listener(s) serve it. */
  listeners: readonly Listener[];
  /** Who may call it (protocol/roles.ts): 'public', 'device' (own proofs) or the roles of signed-in users and API tokens. */
  access: Access;
  summary: string;
  description?: string;
  /** The body is a CSV stream the handler reads from `raw` (no JSON parsing, no body limit). */
  csv?: true;
  schema: S;
  handler(req: RouteRequest<S>, ctx: HandlerContext): Promise<z.output<S['response'][200]> | FileAnswer> | z.output<S['response'][200]> | FileAnswer;
}

/** A route with its types checked against its schemas, for the table. */
export function route<S extends Schemas>(r: Route<S>): Route {
  return r as unknown as Route;
}
