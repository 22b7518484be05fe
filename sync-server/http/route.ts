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
  RepayAnswer,
  StatusAnswer,
} from '../../protocol/api.js';
import type { ReportDoc, ReportName } from '../../protocol/reports.js';
import type { Access } from '../../protocol/roles.js';
import type { CsvSource } from '../csv.js';
import type { Provisioning } from '../enrol.js';

/**
 * The two listeners: the operator's API on loopback, and the device-facing
 * enrolment listener (`--enrol-listen`), which serves only what a device needs
 * to enrol and to prove itself (enrol, rotate, whoami, health).
 */
export type Listener = 'operator' | 'enrol';

/** What the HTTP API needs from the running server (server.ts builds it). */
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
}

export interface HttpContext {
  api: Api;
  provisioning: Provisioning;
}

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
  handler(req: RouteRequest<S>, ctx: HttpContext & { listener: Listener }): Promise<z.output<S['response'][200]>> | z.output<S['response'][200]>;
}

/** A route with its types checked against its schemas, for the table. */
export function route<S extends Schemas>(r: Route<S>): Route {
  return r as unknown as Route;
}
