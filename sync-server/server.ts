import type { Logger } from '../protocol/log.js';
import type { ServerTokenKey } from '../protocol/token-hsm.js';
import type { AuthPolicy } from './broker.js';
import type { Charger, ChargingQueue, RetryPolicy, SettleSchedule } from './charging.js';
import type { Api } from './http/route.js';
import type { IngestLimits } from './ingest.js';
import type { Publisher, PublisherOptions } from './publisher.js';
import type { Db } from './registry.js';
import type { Provisioning } from './enrol.js';
import type { UsagePublisher } from './usage-publisher.js';
import type { SettlementOptions } from './settlement/index.js';
import type { MosquittoFiles } from './mosquitto-auth.js';
import type { NatsFiles } from './nats-auth.js';
import { Auth, ensureFirstAdmin, writeAdminToken, type AuthOptions } from './auth/service.js';
import { ServerMetrics } from './metrics.js';
import type { TlsMaterial } from './tls.js';
import { Notifier, type NotifyOptions } from './notify/notifier.js';
import { ensureBankCa } from './bank/ca.js';
import type { BankService, BankOptions } from './bank/service.js';
import type { Cabinet } from './cabinet/service.js';
import type { CabinetConfig, IdentityProvider } from './cabinet/provider.js';
import type { ConnectLockOptions } from './cabinet/lock.js';
import { checkOptions } from './start/options.js';
import { openServerRegistry } from './start/registry.js';
import { startLists } from './start/lists.js';
import { startMoney } from './start/money.js';
import { startBroker } from './start/broker.js';
import { startIngest } from './start/ingest.js';
import { startServices } from './start/services.js';
import { startOperatorListener, startOuterListeners } from './start/http.js';
import { startTimers } from './start/timers.js';
import { startLeadership, type Leadership, type PgLeadershipOptions } from './start/leader.js';
import { Shutdown } from './start/shutdown.js';

export interface ServerOptions {
  dataDir: string;
  /** `--database`: the registry's SQLite file or a postgres:// URL (db/open.ts); default DATA/registry.sqlite. */
  database?: string;
  /** Embedded broker port (0 = any free port); ignored when brokerUrl is set. */
  mqttPort?: number;
  /** External broker, e.g. mqtt://127.0.0.1:1883. */
  brokerUrl?: string;
  brokerUsername?: string;
  brokerPassword?: string;
  /**
   * `--shared-ingest`: several instances on one PostgreSQL and one external Mosquitto (docs/postgres.md "Several
   * instances"): journals and status through a shared subscription, each to one instance.
   */
  sharedIngest?: boolean;
  /** On PostgreSQL: the leader lock's timings (start/leader.ts; tests shorten them). */
  leader?: Omit<PgLeadershipOptions, 'log'>;
  /** A leadership made by the caller instead of the database's (tests of a follower on SQLite). */
  leadership?: Leadership;
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
  /** How long the server waits for the SUBACK of its subscription to the devices' topics (default 10 s; tests shorten it). */
  subscribeTimeoutMs?: number;
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
  /** Whether this instance leads (start/leader.ts): always on SQLite; on PostgreSQL the holder of the advisory lock. */
  leadership: Leadership;
  close(): Promise<void>;
}

/**
 * The sync server, one builder per area (sync-server/start/): options checked, registry and keys, lists, money,
 * broker and its clients, ingest, the services behind the routes, the operator listener, the periodic jobs, the
 * other listeners, the guardians' notifications and the bank's callbacks. close() runs the reverse order
 * (start/shutdown.ts), and so does a start-up that fails half-way: nothing it opened is left behind.
 */
export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const log = o.log;
  const forDevices = checkOptions(o);
  // the bank CA is made on first use (here or by rc-sync-server bank add); a bank is then its certificate's fingerprint
  if (o.bankListen) ensureBankCa(o.dataDir);
  const registry = openServerRegistry(o, log);
  const { db, key } = registry;
  const down = new Shutdown();
  down.add(registry.close);
  try {
    const leadership = await startLeadership(o, log);
    down.add(() => leadership.close());
    // accounts: a fresh admin token for the local CLI (the first admin, when there is none, is made once the API listens)
    const adminTokenFile = writeAdminToken(db, o.dataDir);
    const auth = new Auth(db, o.auth);
    const metrics = new ServerMetrics(db);
    const lists = startLists(db, key.privateKey, o, log, leadership);
    const { settlement, charging } = startMoney(db, o, { metrics, commitAndPublish: lists.commitAndPublish, log });
    const { clock: notifyClock, ...notifyCfg } = o.notify ?? {};
    const notifier = new Notifier(db, log.child({ component: 'notify' }), notifyCfg, notifyClock ? { clock: notifyClock } : {});

    // closes after the operator listener: the list changes it queued finish first, then the clients end
    const broker = await startBroker(o, { db, publicKeyPem: key.publicKeyPem, forDevices, lists, leader: leadership, log });
    down.add(broker.close);
    const { provisioning } = broker;
    // in the turn the ingest client was made (no await since): no device message comes before its handler
    const ingest = startIngest(broker.ingestClient, o, { db, key: key.privateKey, lists, charging, provisioning, metrics, leader: leadership, log });

    const services = await startServices(o, {
      registry,
      lists,
      ingest,
      settlement,
      charging,
      notifier,
      provisioning,
      auth,
      metrics,
      broker,
      leader: leadership,
      log,
    });
    const operator = await startOperatorListener(o, { db, routes: services.routes, metrics, log });
    down.add(operator.close);
    const timers = startTimers(o, { charging, lists, leader: leadership, log });
    down.add(timers.close);
    const outer = await startOuterListeners(o, { db, ctx: operator.ctx, webDir: operator.webDir, log });
    down.add(outer.close);

    // the first admin's scrypt hash takes a moment: not before the port opens (nobody can sign in until it exists)
    const firstAdmin = await ensureFirstAdmin(db);
    const { bank, cabinet } = services;
    // the outboxes (guardians' messages, banks' callbacks) and their purges: the leader's (start/leader.ts)
    let outboxes: 'idle' | 'running' | 'stopped' = 'idle';
    const startOutboxes = () => {
      if (outboxes !== 'idle') return;
      outboxes = 'running';
      notifier.start();
      bank.start();
    };
    if (leadership.isLeader()) startOutboxes();
    leadership.on('gained', startOutboxes);
    leadership.on('lost', () => {
      if (outboxes === 'running') void Promise.all([notifier.close(), bank.close()]).catch(() => undefined);
      outboxes = 'stopped';
    });
    down.add(async () => {
      await notifier.close();
      await bank.close();
    });
    await broker.connected();

    operator.markReady();
    return {
      mqttUrl: broker.mqttUrl,
      mqttsUrl: broker.mqttsUrl,
      publicBrokerUrl: broker.publicBrokerUrl,
      httpUrl: operator.url,
      firstAdmin,
      adminTokenFile,
      metrics,
      publicKeyPem: key.publicKeyPem,
      db,
      publisher: lists.publisher,
      usage: lists.usage,
      charging,
      api: services.api,
      provisioning,
      enrolUrl: outer.enrolUrl,
      bankUrl: outer.bankUrl,
      bank,
      publicUrl: outer.publicUrl,
      cabinet,
      notifier,
      leadership,
      close: () => down.close(),
    };
  } catch (e) {
    return down.abort(e);
  }
}
