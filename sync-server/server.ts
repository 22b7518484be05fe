import { ErrorCode } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import type { ServerTokenKey } from '../protocol/token-hsm.js';
import type { AuthPolicy } from './broker.js';
import { type ChargingQueue, type Charger, type RetryPolicy, type SettleSchedule } from './charging.js';
import { startListener } from './http/app.js';
import { ROUTES } from './http/routes/index.js';
import type { Api } from './http/route.js';
import { type ImportKind } from './import.js';
import { Importer } from './import-stage.js';
import type { IngestLimits } from './ingest.js';
import type { Publisher, PublisherOptions } from './publisher.js';
import { currentVersions, type Db } from './registry.js';
import type { Provisioning } from './enrol.js';
import { buildReport, signReport } from './reports/index.js';
import type { UsagePublisher } from './usage-publisher.js';
import { queryCharges, queryJournal, type SettlementOptions } from './settlement/index.js';
import type { MosquittoFiles } from './mosquitto-auth.js';
import type { NatsFiles } from './nats-auth.js';
import { publishedCategoryIds } from './categories.js';
import { consoleApi } from './console/api.js';
import { portalApi } from './portal/queries.js';
import { findWebDir, registerWeb } from './portal/serve.js';
import { findConsoleDir, registerConsole } from './console/serve.js';
import { Auth, ensureFirstAdmin, writeAdminToken, type AuthOptions } from './auth/service.js';
import { ServerMetrics } from './metrics.js';
import type { TlsMaterial } from './tls.js';
import { Notifier, type NotifyOptions } from './notify/notifier.js';
import { bankTrust } from './bank/banks.js';
import { ensureBankCa } from './bank/ca.js';
import { BankService, type BankOptions } from './bank/service.js';
import { Cabinet, snilsKey } from './cabinet/service.js';
import { identityProvider, type CabinetConfig, type IdentityProvider } from './cabinet/provider.js';
import type { ConnectLockOptions } from './cabinet/lock.js';
import { withPublicOnOperator } from './http/routes/index.js';
import { checkOptions } from './start/options.js';
import { openServerRegistry } from './start/registry.js';
import { startLists } from './start/lists.js';
import { startMoney } from './start/money.js';
import { startBroker } from './start/broker.js';
import { startIngest } from './start/ingest.js';

export interface ServerOptions {
  dataDir: string;
  /** Embedded broker port (0 = any free port); ignored when brokerUrl is set. */
  mqttPort?: number;
  /** External broker, e.g. mqtt://127.0.0.1:1883. */
  brokerUrl?: string;
  brokerUsername?: string;
  brokerPassword?: string;
  httpPort: number;
  /** The card-token key: in memory, or in the server's PKCS#11 token (it tokenises and wraps for devices there). */
  tokenKey: ServerTokenKey;
  log: Logger;
  charger?: Charger;
  /** Broker policy for the embedded broker (provisioning plugs its own in). */
  policy?: (serverUser: string, serverPassword: string) => AuthPolicy;
  publisher?: Partial<PublisherOptions>;
  chargingIntervalMs?: number;
  /** Per-device journal rate and the impossible-trip window (default ingest.ts DEFAULT_INGEST_LIMITS). */
  ingestLimits?: Partial<IngestLimits>;
  /** How a declined charge is retried before the card is stop-listed (default charging.ts DEFAULT_RETRY). */
  chargeRetry?: RetryPolicy;
  /** When settlement runs after journal uploads: debounce and slice length (default charging.ts DEFAULT_SCHEDULE). */
  settleSchedule?: Partial<SettleSchedule>;
  /** Fleet usage (issue 10 item 4): recomputed and published at most this often, only when changed (default 1000 ms; 0 = off). */
  usageIntervalMs?: number;
  /** Provisioning: the embedded broker enforces per-device credentials and ACLs (allowAnonymous: development only). */
  deviceAuth?: { allowAnonymous?: boolean };
  /** Provisioning with an external Mosquitto: password and ACL files the server writes (and SIGHUPs Mosquitto). */
  mosquitto?: MosquittoFiles;
  /** Provisioning with a NATS cluster: the users file the server writes (bcrypt, from the same ACL) and how the nodes reload it (docs/cluster.md). */
  nats?: NatsFiles;
  /** Broker URL handed to enrolled devices, when it differs from the one the server uses. */
  publicBrokerUrl?: string;
  /** Back-office settlement: the operator's time zone and the end of a service day (default Europe/Moscow, midnight). */
  settlement?: Partial<SettlementOptions>;
  /** Provisioning: a listener for the device-facing routes only (enrol, rotate, whoami), e.g. 0.0.0.0:7301. */
  enrolListen?: { host: string; port: number };
  /** The operator console's bundle (default: console/serve.ts findConsoleDir); null serves none (server.console-missing). */
  consoleDir?: string | null;
  /** The cabinet's and the portal's bundles, a dir holding cabinet/ and portal/ (default: portal/serve.ts findWebDir); null serves none. */
  webDir?: string | null;
  /** Accounts: session lifetimes and the sign-in rate limit (defaults in sync-server/auth/). */
  auth?: AuthOptions;
  /** The enrolment listener serves HTTPS with this certificate; enrolment tokens then pin its CA (issue 13 item 9). */
  enrolTls?: TlsMaterial;
  /** The embedded broker also listens with TLS (mqtts) where devices reach it; its CA is sealed into enrolment answers. */
  brokerTls?: { listen: { host: string; port: number }; material: TlsMaterial };
  /** An external broker's CA (PEM) handed to devices, when it speaks mqtts to them (Mosquitto's TLS listener). */
  brokerCa?: string;
  /** Guardians' notifications: SMTP, quiet hours, "not arrived by", retries (notify/notifier.ts NotifyConfig); the clock for tests. */
  notify?: NotifyOptions & { clock?: () => number };
  /** The bank API (issue 15 item 3): its mutual-TLS listener (server certificate bankTls; trusts the bank CA in DATA/bank-ca and the CAs banks brought), rate limit, callbacks. */
  bankListen?: { host: string; port: number };
  bankTls?: TlsMaterial;
  bank?: BankOptions;
  /** The cardholder's cabinet (issue 15): its identity provider (parsed --cabinet file), or a ready provider (tests); the clock for tests. */
  /** demo: the demo started this server (demo/demo.ts only; no command-line option sets it): the demo's identity provider is allowed. */
  cabinet?: { config?: CabinetConfig; provider?: IdentityProvider; clock?: () => number; lock?: ConnectLockOptions; demo?: boolean };
  /** The cabinet's and the portal's listener (`--public-listen`); HTTPS with publicTls. Without it they are served on the operator listener. */
  publicListen?: { host: string; port: number };
  publicTls?: TlsMaterial;
}

export interface RunningServer {
  mqttUrl: string;
  /** The embedded broker's TLS listener (mqtts://host:port as bound), when brokerTls was given. */
  mqttsUrl: string | null;
  /** The broker URL enrolled devices get. */
  publicBrokerUrl: string;
  httpUrl: string;
  publicKeyPem: string;
  db: Db;
  publisher: Publisher;
  usage: UsagePublisher;
  charging: ChargingQueue;
  api: Api;
  provisioning: Provisioning;
  /** URL of the device-facing enrolment listener, when enrolListen was given. */
  enrolUrl: string | null;
  /** URL of the bank listener (https, mutual TLS), when bankListen was given. */
  bankUrl: string | null;
  bank: BankService;
  /** URL of the cabinet's and portal's listener, when publicListen was given. */
  publicUrl: string | null;
  cabinet: Cabinet;
  /** The first admin's account, created at this start because no user existed: its password is shown once (start prints it to stdout). */
  firstAdmin: { name: string; password: string } | null;
  /** DATA/admin.token: a fresh admin API token (0600) for the local CLI; the previous one is revoked. */
  adminTokenFile: string;
  metrics: ServerMetrics;
  notifier: Notifier;
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const log = o.log;
  const forDevices = checkOptions(o);
  // the bank CA is made on first use (here or by rc-sync-server bank add); a bank is then its certificate's fingerprint
  if (o.bankListen) ensureBankCa(o.dataDir);
  const { db, key, tokeniser: importKey } = openServerRegistry(o, log);
  // accounts: a fresh admin token for the local CLI (the first admin, when there is none, is made once the API listens)
  const adminTokenFile = writeAdminToken(db, o.dataDir);
  const auth = new Auth(db, o.auth);
  const metrics = new ServerMetrics(db);
  let ready = false;
  const lists = startLists(db, key.privateKey, o, log);
  const { publisher, usage, serial, commitAndPublish } = lists;
  const { settlement, charging } = startMoney(db, o, { metrics, commitAndPublish, log });
  const { clock: notifyClock, ...notifyCfg } = o.notify ?? {};
  const notifier = new Notifier(db, log.child({ component: 'notify' }), notifyCfg, notifyClock ? { clock: notifyClock } : {});

  const broker = await startBroker(o, { db, publicKeyPem: key.publicKeyPem, forDevices, lists, log });
  const { provisioning, mqttUrl, mqttsUrl, publicBrokerUrl } = broker;
  // in the turn the ingest client was made (no await since): no device message comes before its handler
  const ingest = startIngest(broker.ingestClient, o, { db, key: key.privateKey, lists, charging, provisioning, metrics, log });

  const chargeTimer = setInterval(() => void charging.runOnce().catch(() => undefined), o.chargingIntervalMs ?? 5000);
  chargeTimer.unref();
  const resealTimer = setInterval(() => void serial(() => publisher.reseal()).catch(() => undefined), Math.max(60_000, publisher['opts'].manifestTtlMs / 4));
  resealTimer.unref();
  const usageTimer =
    o.usageIntervalMs === 0
      ? null
      : setInterval(() => {
          try {
            usage.tick();
          } catch (e) {
            log.warn({ err: String(e) }, 'fleet usage not computed');
          }
        }, o.usageIntervalMs ?? 1000);
  usageTimer?.unref();

  const today = () => new Date().toISOString().slice(0, 10);
  // imports in short staged transactions, one at a time (import-stage.ts)
  const importer = new Importer({
    db,
    publisher,
    log: log.child({ component: 'import' }),
    serial,
    tokenKey: importKey,
    categories: () => publishedCategoryIds(db),
    today,
    busy: () => ingest.busy(), // journal uploads first: the import takes short steps while they flow
  });
  const api: Api = {
    publicKeyPem: key.publicKeyPem,
    importCsv: async (kind: ImportKind, lines, skipInvalid) => {
      const timer = metrics.imports.startTimer({ kind });
      const answer = await importer.run(kind, lines, skipInvalid);
      timer();
      return answer;
    },
    imports: (limit) => importer.list(limit),
    status: () => {
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
    },
    journal: (device, limit, flagged) => queryJournal(db, { device, limit, flagged }),
    charges: (status, limit) => queryCharges(db, { status, limit }),
    setConfig: (name, rules) =>
      serial(async () => {
        const version = publisher.setConfig(name, rules);
        await publisher.publishConfigs(name);
        return { name, version };
      }),
    chargingRun: async () => ({ declined: await charging.runOnce() }),
    chargingDecline: (tokens) => charging.setDeclined(tokens),
    repay: (token) => charging.repay(token),
    report: (name, params) =>
      signReport(buildReport(db, name, params, { now: new Date(), timeZone: settlement.opts.timeZone }), key.privateKey, key.publicKeyPem),
    notifications: (limit) => notifier.status(limit),
    info: () => ({ ok: true as const, mqtt: mqttUrl, embedded: broker.embedded, versions: currentVersions(db) }),
  };

  // one route table, two listeners: the operator's API on loopback, the device-facing enrolment routes where devices reach them
  const readable = () => {
    try {
      db.prepare('SELECT 1 FROM meta LIMIT 1').get();
      return true;
    } catch {
      return false;
    }
  };
  const consoleDeps = {
    db,
    tokenKey: importKey,
    commitAndPublish,
    version: (s: string) => publisher.version(s),
    provisioning,
    log: log.child({ component: 'console' }),
  };
  // the bank API: the same tokeniser as imports and the console; list changes through the one serialised commit
  // SNILS as the registry keeps it (keyed hashes): the cabinet's sign-in and the banks' applicants use the one key
  const snils = snilsKey(o.dataDir, o.cabinet?.config?.snilsKeyFile);
  const bank = new BankService(
    { db, tokenKey: importKey, snilsKey: snils, commitAndPublish, version: (s) => publisher.version(s), log: log.child({ component: 'bank' }) },
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
    tokenKey: importKey,
    connect: consoleDeps,
    log: log.child({ component: 'cabinet' }),
    ...(o.cabinet?.clock ? { clock: o.cabinet.clock } : {}),
    ...(o.cabinet?.lock ? { lock: o.cabinet.lock } : {}),
  });
  const httpCtx = {
    api,
    provisioning,
    auth,
    console: consoleApi(consoleDeps),
    portal: portalApi(db),
    cabinet,
    bank,
    ops: { ready: () => ready && readable(), metrics: () => metrics.expose() },
  };
  const httpLog = log.child({ component: 'http' });
  const consoleDir = o.consoleDir === undefined ? findConsoleDir() : o.consoleDir;
  if (!consoleDir) log.warn({ code: ErrorCode.ServerConsoleMissing }, 'operator console not built (npm run build): the API runs without it');
  // the cabinet and the portal: on their own listener, or on the operator's when there is none (npm start: one port)
  const webDir = o.webDir === undefined ? findWebDir() : o.webDir;
  const http = await startListener(o.publicListen ? ROUTES : withPublicOnOperator(ROUTES), httpCtx, {
    listener: 'operator',
    host: '127.0.0.1',
    port: o.httpPort,
    bodyLimit: 1 << 20,
    log: httpLog,
    before: async (app) => {
      registerConsole(app, consoleDir);
      if (!o.publicListen) registerWeb(app, webDir);
    },
  });
  const httpUrl = http.url;
  const enrolListener = o.enrolListen
    ? await startListener(ROUTES, httpCtx, {
        listener: 'enrol',
        ...o.enrolListen,
        bodyLimit: 64 * 1024,
        log: httpLog,
        ...(o.enrolTls ? { https: { cert: o.enrolTls.chain, key: o.enrolTls.key } } : {}),
      }).catch(async (e: unknown) => {
        await http.close();
        throw e;
      })
    : null;

  const closeListeners = async () => {
    await enrolListener?.close();
    await http.close();
  };
  const publicListener = o.publicListen
    ? await startListener(ROUTES, httpCtx, {
        listener: 'public',
        ...o.publicListen,
        bodyLimit: 64 * 1024,
        log: httpLog,
        before: async (app) => registerWeb(app, webDir),
        ...(o.publicTls ? { https: { cert: o.publicTls.chain, key: o.publicTls.key } } : {}),
      }).catch(async (e: unknown) => {
        await closeListeners();
        throw e;
      })
    : null;
  const bankListener = o.bankListen
    ? await startListener(ROUTES, httpCtx, {
        listener: 'bank',
        ...o.bankListen,
        bodyLimit: 16 * 1024,
        log: httpLog,
        https: {
          cert: o.bankTls!.chain,
          key: o.bankTls!.key,
          ca: bankTrust(db, o.dataDir),
          requestCert: true,
          rejectUnauthorized: true,
        },
      }).catch(async (e: unknown) => {
        await publicListener?.close();
        await closeListeners();
        throw e;
      })
    : null;

  // certificates banks bring from their own CA: trusted once registered, without a restart (checked every 5 s)
  let trusted = JSON.stringify(bankTrust(db, o.dataDir));
  const trustTimer = bankListener
    ? setInterval(() => {
        try {
          const now = bankTrust(db, o.dataDir);
          if (JSON.stringify(now) === trusted) return;
          trusted = JSON.stringify(now);
          bankListener.setTls({ cert: o.bankTls!.chain, key: o.bankTls!.key, ca: now });
          log.info({ cas: now.length }, 'bank listener: trusted client CAs reloaded');
        } catch (e) {
          log.error({ err: String(e) }, 'bank listener: trusted client CAs not reloaded');
        }
      }, o.bank?.refreshMs ?? 5000)
    : null;
  trustTimer?.unref();

  // the first admin's scrypt hash takes a moment: not before the port opens (nobody can sign in until it exists)
  const firstAdmin = await ensureFirstAdmin(db).catch(async (e: unknown) => {
    if (trustTimer) clearInterval(trustTimer);
    await bankListener?.close();
    await publicListener?.close();
    await enrolListener?.close();
    await http.close();
    throw e;
  });

  notifier.start();
  bank.start();
  await broker.connected();

  ready = true;
  return {
    mqttUrl,
    mqttsUrl,
    publicBrokerUrl,
    httpUrl,
    firstAdmin,
    adminTokenFile,
    metrics,
    publicKeyPem: key.publicKeyPem,
    db,
    publisher,
    usage,
    charging,
    api,
    provisioning,
    enrolUrl: enrolListener?.url ?? null,
    bankUrl: bankListener?.url ?? null,
    bank,
    publicUrl: publicListener?.url ?? null,
    cabinet,
    notifier,
    close: async () => {
      await notifier.close();
      await bank.close();
      if (trustTimer) clearInterval(trustTimer);
      await bankListener?.close();
      await publicListener?.close();
      await enrolListener?.close();
      clearInterval(chargeTimer);
      await charging.stop();
      clearInterval(resealTimer);
      if (usageTimer) clearInterval(usageTimer);
      usage.stop();
      ready = false;
      await http.close();
      await broker.close();
      db.close();
    },
  };
}
