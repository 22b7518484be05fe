import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { Auth } from '../auth/service.js';
import { BankService } from '../bank/service.js';
import { Cabinet, snilsKey } from '../cabinet/service.js';
import { identityProvider } from '../cabinet/provider.js';
import { publishedCategoryIds } from '../categories.js';
import type { ChargingQueue } from '../charging.js';
import { consoleApi } from '../console/api.js';
import type { Provisioning } from '../enrol.js';
import type { HttpContext, Api } from '../http/route.js';
import type { ImportKind } from '../import.js';
import { Importer } from '../import-stage.js';
import type { Ingest } from '../ingest.js';
import type { ServerMetrics } from '../metrics.js';
import type { Notifier } from '../notify/notifier.js';
import { portalApi } from '../portal/queries.js';
import { currentVersions, type Db } from '../registry.js';
import { buildReport, signReport } from '../reports/index.js';
import type { ServerOptions } from '../server.js';
import { queryCharges, queryJournal, type Settlement } from '../settlement/index.js';
import type { Leadership } from './leader.js';
import type { Lists } from './lists.js';
import type { ServerRegistry } from './registry.js';

export interface Services {
  api: Api;
  bank: BankService;
  cabinet: Cabinet;
  /** What every listener's routes call (start/http.ts adds the readiness and metrics of /healthz and /metrics). */
  routes: Omit<HttpContext, 'ops'>;
}

/**
 * What the HTTP routes call: the operator's API (imports, status, journal, charging, reports, notifications),
 * the console, the bank API, the cardholder's cabinet and the portal. Nothing listens yet (start/http.ts).
 */
export async function startServices(
  o: Pick<ServerOptions, 'dataDir' | 'cabinet' | 'bank' | 'publisher' | 'settlement'>,
  deps: {
    registry: ServerRegistry;
    lists: Lists;
    ingest: Ingest;
    settlement: Settlement;
    charging: ChargingQueue;
    notifier: Notifier;
    provisioning: Provisioning;
    auth: Auth;
    metrics: ServerMetrics;
    broker: { mqttUrl: string; embedded: boolean };
    leader: Leadership;
    log: Logger;
  },
): Promise<Services> {
  const { registry, lists, ingest, settlement, charging, notifier, provisioning, metrics, broker, log } = deps;
  // what commits lists or charges by itself is the leader's (start/leader.ts); list changes of the console, the bank
  // and the cabinet go through commitAndPublish, which a follower marks for the leader (start/lists.ts)
  const leaderOnly = async (what: string): Promise<void> => {
    if (!(await deps.leader.confirm()))
      throw new RcError(ErrorCode.ServerNotLeader, `${what} is done by the leading instance: this one follows (docs/postgres.md "Several instances")`);
  };
  const { db, key, tokeniser } = registry;
  const { publisher, serial, commitAndPublish } = lists;
  // a stop-list entry's "since" is the operator's service day (as the cabinet's today and settlement), not the UTC date
  const today = () => settlement.serviceDay(Date.now());
  // imports in short staged transactions, one at a time (import-stage.ts), in a worker thread (import-thread.ts)
  const importer = new Importer({
    db,
    publisher,
    log: log.child({ component: 'import' }),
    serial,
    tokenKey: tokeniser,
    categories: () => publishedCategoryIds(db),
    today,
    busy: () => ingest.busy(), // journal uploads first: the import takes short steps while they flow
    durable: () => ingest.durable(), // and syncs each one, so an ack's fsync stays short
    worker: { signingKey: key.privateKey, ...(o.publisher ? { publisher: o.publisher } : {}) }, // seals the lists' new versions there
  });
  const api: Api = {
    publicKeyPem: key.publicKeyPem,
    importCsv: async (kind: ImportKind, lines, skipInvalid) => {
      await leaderOnly('an import');
      const timer = metrics.imports.startTimer({ kind });
      const answer = await importer.run(kind, lines, skipInvalid);
      timer();
      return answer;
    },
    imports: (limit) => importer.list(limit),
    status: () => deviceStatus(db, notifier),
    journal: (device, limit, flagged) => queryJournal(db, { device, limit, flagged }),
    charges: (status, limit) => queryCharges(db, { status, limit }),
    setConfig: (name, rules) =>
      serial(async () => {
        await leaderOnly('a configuration change');
        const version = publisher.setConfig(name, rules);
        await publisher.publishConfigs(name);
        return { name, version };
      }),
    chargingRun: async () => {
      await leaderOnly('a charging run');
      return { declined: await charging.runOnce() };
    },
    chargingDecline: (tokens) => charging.setDeclined(tokens),
    repay: (token) => charging.repay(token),
    report: (name, params) =>
      signReport(buildReport(db, name, params, { now: new Date(), timeZone: settlement.opts.timeZone }), key.privateKey, key.publicKeyPem),
    notifications: (limit) => notifier.status(limit),
    info: () => ({ ok: true as const, mqtt: broker.mqttUrl, embedded: broker.embedded, versions: currentVersions(db) }),
  };

  const consoleDeps = {
    db,
    tokenKey: tokeniser,
    commitAndPublish,
    version: (s: string) => publisher.version(s),
    provisioning,
    log: log.child({ component: 'console' }),
    today,
  };
  // the bank API: the same tokeniser as imports and the console; list changes through the one serialised commit
  // SNILS as the registry keeps it (keyed hashes): the cabinet's sign-in and the banks' applicants use the one key
  const snils = snilsKey(o.dataDir, o.cabinet?.config?.snilsKeyFile);
  const bank = new BankService(
    { db, tokenKey: tokeniser, snilsKey: snils, commitAndPublish, version: (s) => publisher.version(s), log: log.child({ component: 'bank' }) },
    o.bank,
  );
  const cabinet = new Cabinet({
    db,
    provider:
      o.cabinet?.provider ??
      (o.cabinet?.config
        ? await identityProvider(o.cabinet.config.provider, { demo: o.cabinet.demo === true, ...(o.cabinet.clock ? { clock: o.cabinet.clock } : {}) })
        : null),
    snilsKey: snils,
    tokenKey: tokeniser,
    connect: consoleDeps,
    log: log.child({ component: 'cabinet' }),
    settlement: o.settlement,
    ...(o.cabinet?.clock ? { clock: o.cabinet.clock } : {}),
    ...(o.cabinet?.lock ? { lock: o.cabinet.lock } : {}),
  });
  return {
    api,
    bank,
    cabinet,
    routes: { api, provisioning, auth: deps.auth, console: consoleApi(consoleDeps), portal: portalApi(db), cabinet, bank },
  };
}

/** GET /api/status: each device's lists against the current versions, and the guardians' messages waiting. */
function deviceStatus(db: Db, notifier: Notifier): ReturnType<Api['status']> {
  const current = currentVersions(db);
  const rows = db.prepare('SELECT id, online, last_seen, lists, backlog, reader FROM devices ORDER BY id').all() as {
    id: string;
    online: number;
    last_seen: string | null;
    lists: string;
    backlog: number;
    reader: string | null;
  }[];
  const { pending, failed } = notifier.counts();
  return {
    current,
    notifications: { pending, failed },
    devices: rows.map((r) => {
      const held = JSON.parse(r.lists) as Record<string, number>;
      const lists: Record<string, { device: number; current: number }> = {};
      for (const [s, v] of Object.entries(held)) lists[s] = { device: v, current: current[s] ?? 0 };
      return { id: r.id, online: r.online === 1, lastSeen: r.last_seen, lists, backlog: r.backlog, reader: r.reader };
    }),
  };
}
