import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { ErrorCode, RcError, isRcError } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import type { Scope } from '../protocol/lists.js';
import { isHsmKey, type ServerTokenKey } from '../protocol/token-hsm.js';
import { DeviceStatus, JournalBatch, MAX_CONTROL_MESSAGE, SyncRequest } from '../protocol/wire/messages.js';
import { parseTopic, topics } from '../protocol/wire/topics.js';
import { parseControl } from '../protocol/wire/verify.js';
import { sealJournalAck } from '../protocol/wire/chunking.js';
import { openPolicy, startEmbeddedBroker, type AuthPolicy, type EmbeddedBroker } from './broker.js';
import { ChargingQueue, SimulatedCharger, type Charger, type RetryPolicy } from './charging.js';
import { startListener } from './http/app.js';
import { ROUTES } from './http/routes/index.js';
import type { Api } from './http/route.js';
import { type ImportKind } from './import.js';
import { Importer } from './import-stage.js';
import { Ingest, type IngestLimits } from './ingest.js';
import { finishInterruptedImport } from './import-recovery.js';
import { loadOrCreateSigningKey } from './keys.js';
import { Publisher, DEFAULT_PUBLISHER_OPTIONS, type PublisherOptions } from './publisher.js';
import { currentVersions, openRegistry, type Db } from './registry.js';
import type { Dirty } from './materialize.js';
import { Provisioning } from './enrol.js';
import { RequestPolicy } from './requests.js';
import { buildReport, signReport } from './reports/index.js';
import { UsagePublisher } from './usage-publisher.js';
import { Settlement, queryCharges, queryJournal, type SettlementOptions } from './settlement/index.js';
import type { MosquittoFiles } from './mosquitto-auth.js';
import { publishedCategoryIds } from './categories.js';

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
  /** Fleet usage (issue 10 item 4): recomputed and published at most this often, only when changed (default 1000 ms; 0 = off). */
  usageIntervalMs?: number;
  /** Provisioning: the embedded broker enforces per-device credentials and ACLs (allowAnonymous: development only). */
  deviceAuth?: { allowAnonymous?: boolean };
  /** Provisioning with an external Mosquitto: password and ACL files the server writes (and SIGHUPs Mosquitto). */
  mosquitto?: MosquittoFiles;
  /** Broker URL handed to enrolled devices, when it differs from the one the server uses. */
  publicBrokerUrl?: string;
  /** Back-office settlement: the operator's time zone and the end of a service day (default Europe/Moscow, midnight). */
  settlement?: Partial<SettlementOptions>;
  /** Provisioning: a listener for the device-facing routes only (enrol, rotate, whoami), e.g. 0.0.0.0:7301. */
  enrolListen?: { host: string; port: number };
}

export interface RunningServer {
  mqttUrl: string;
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
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const log = o.log;
  const db = openRegistry(o.dataDir);
  // durable acks: every commit fsyncs the WAL, so no journal-ack leaves before the entries it covers are on disk
  db.pragma('synchronous = FULL');
  const key = loadOrCreateSigningKey(o.dataDir);
  if (key.created) log.info({ dataDir: o.dataDir }, 'signing key created (0600)');
  const publisher = new Publisher(db, key.privateKey, log.child({ component: 'publisher' }), { ...DEFAULT_PUBLISHER_OPTIONS, ...o.publisher });
  // an import cut short by a crash: recompute its scopes now (published with everything on connection)
  finishInterruptedImport(db, publisher, log.child({ component: 'import' }));
  const ingest = new Ingest(db, o.settlement, o.ingestLimits);
  const settlement = new Settlement(db, o.settlement);
  const usage = new UsagePublisher(db, key.privateKey, log.child({ component: 'usage' }), o.settlement ? { settlement: o.settlement } : {});

  // serialise everything that changes lists
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const p = chain.then(f, f);
    chain = p.catch(() => undefined);
    return p;
  };
  const commitAndPublish = (dirty: Dirty): Promise<Scope[]> =>
    serial(async () => {
      const changed = publisher.commit(dirty);
      await publisher.publish(changed);
      return changed;
    });

  const charging = new ChargingQueue(
    db,
    o.charger ?? new SimulatedCharger(db),
    async (d) => void (await commitAndPublish(d)),
    log.child({ component: 'charging' }),
    settlement,
    o.chargeRetry,
  );

  // broker
  let embedded: EmbeddedBroker | null = null;
  const serverUser = 'rc-sync-server';
  const serverPassword = o.brokerPassword ?? randomBytes(18).toString('base64url');
  let mqttUrl = o.brokerUrl;
  const provisioning = new Provisioning({
    db,
    publicKeyPem: key.publicKeyPem,
    tokenKey: o.tokenKey,
    serverUser: o.brokerUrl ? (o.brokerUsername ?? serverUser) : serverUser,
    serverPassword,
    log: log.child({ component: 'provisioning' }),
    ...(o.mosquitto ? { mosquitto: o.mosquitto } : {}),
    ...(o.publicBrokerUrl ? { publicBrokerUrl: o.publicBrokerUrl } : {}),
  });
  if (!mqttUrl) {
    const policy = o.policy ? o.policy(serverUser, serverPassword) : o.deviceAuth ? provisioning.policy(o.deviceAuth) : openPolicy(serverUser, serverPassword);
    embedded = await startEmbeddedBroker({ port: o.mqttPort ?? 1883, policy, log: log.child({ component: 'broker' }) });
    mqttUrl = embedded.url;
  }
  provisioning.attach(mqttUrl, embedded ? embedded.disconnect : null);
  provisioning.writeBrokerFiles();

  const client: MqttClient = mqtt.connect(mqttUrl, {
    protocolVersion: 4,
    clientId: `rc-sync-server-${randomBytes(4).toString('hex')}`,
    // MQTT 3.1.1: no password without a user name
    ...(o.brokerUrl
      ? o.brokerUsername
        ? { username: o.brokerUsername, password: o.brokerPassword }
        : {}
      : { username: serverUser, password: serverPassword }),
    clean: true,
    keepalive: 300, // a million-row import holds the event loop for a while
    reconnectPeriod: 1000,
    connectTimeout: 5000,
  });
  publisher.setTransport({
    publish: async (topic, payload, retain) => {
      // while the broker is away, skip: everything is republished on reconnection
      if (!client.connected) return;
      await client.publishAsync(topic, payload, { qos: 1, retain });
    },
  });
  usage.setTransport({
    publish: async (topic, payload, retain) => {
      if (!client.connected) return;
      await client.publishAsync(topic, payload, { qos: 1, retain });
    },
  });
  const requests = new RequestPolicy(
    (id) => provisioning.registry.get(id)?.scopes ?? null,
    () => publisher.scopes(),
  );
  client.on('connect', () => {
    log.info({ broker: mqttUrl }, 'connected to broker');
    void serial(async () => {
      await client.subscribeAsync([topics.allJournals(), topics.allStatus(), topics.allRequests()], { qos: 1 });
      await publisher.republishAll();
      await usage.republish();
    }).catch((e) => log.error({ err: String(e) }, 'republish failed'));
  });
  client.on('error', (e) => log.warn({ err: e.message, code: ErrorCode.SyncBrokerUnavailable }, 'broker connection error'));
  client.on('message', (topic, payload) => {
    const t = parseTopic(topic);
    if (!t || !('device' in t)) return;
    try {
      if (t.kind === 'journal') {
        const batch = parseControl(payload, JournalBatch, MAX_CONTROL_MESSAGE);
        const r = ingest.store(t.device, null, batch);
        if (r.limited > 0)
          log.warn(
            { device: t.device, code: ErrorCode.ServerRateLimited, limited: r.limited },
            'journal entries over the device rate: not stored, the device resends them',
          );
        const ack = sealJournalAck(t.device, r.upTo, new Date(), key.privateKey); // signed: devices refuse an unsigned ack
        void client.publishAsync(topics.journalAck(t.device), ack, { qos: 1, retain: true }).catch(() => undefined);
        if (r.settle > 0) void charging.runOnce().catch((e) => log.warn({ err: String(e) }, 'charging failed'));
      } else if (t.kind === 'status') {
        if (payload.length === 0) return;
        const s = parseControl(payload, DeviceStatus, MAX_CONTROL_MESSAGE);
        if (s.device !== t.device) throw new RcError(ErrorCode.SyncDeviceMismatch, 'status device id does not match its topic', { topic: t.device });
        ingest.status(s);
      } else if (t.kind === 'request') {
        const r = parseControl(payload, SyncRequest, MAX_CONTROL_MESSAGE);
        if (r.device !== t.device) throw new RcError(ErrorCode.SyncDeviceMismatch, 'request device id does not match its topic', { topic: t.device });
        const { scopes, refused } = requests.admit(t.device, r.scopes, Date.now());
        if (refused) log.debug({ device: t.device, scopes: r.scopes, refused }, 'list request not answered');
        if (scopes.length) void serial(() => publisher.publishManifests(scopes)).catch(() => undefined);
      }
    } catch (e) {
      if (isRcError(e)) log.warn({ code: e.code, topic, err: e.message }, 'message refused');
      else log.error({ err: String(e), topic }, 'message handling failed');
    }
  });

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
  // with the key in the token, imports derive there (one session, kept open: the token's owner closes it)
  const importKey = isHsmKey(o.tokenKey) ? o.tokenKey.hsm.deriver(o.tokenKey.version) : o.tokenKey;
  // imports in short staged transactions, one at a time (import-stage.ts)
  const importer = new Importer({
    db,
    publisher,
    log: log.child({ component: 'import' }),
    serial,
    tokenKey: importKey,
    categories: () => publishedCategoryIds(db),
    today,
  });
  const api: Api = {
    publicKeyPem: key.publicKeyPem,
    importCsv: (kind: ImportKind, lines, skipInvalid) => importer.run(kind, lines, skipInvalid),
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
      return {
        current,
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
    info: () => ({ ok: true as const, mqtt: mqttUrl, embedded: embedded !== null, versions: currentVersions(db) }),
  };

  // one route table, two listeners: the operator's API on loopback, the device-facing enrolment routes where devices reach them
  const httpCtx = { api, provisioning };
  const httpLog = log.child({ component: 'http' });
  const http = await startListener(ROUTES, httpCtx, { listener: 'operator', host: '127.0.0.1', port: o.httpPort, bodyLimit: 1 << 20, log: httpLog });
  const httpUrl = http.url;
  const enrolListener = o.enrolListen
    ? await startListener(ROUTES, httpCtx, { listener: 'enrol', ...o.enrolListen, bodyLimit: 64 * 1024, log: httpLog }).catch(async (e: unknown) => {
        await http.close();
        throw e;
      })
    : null;

  await new Promise<void>((res) => {
    if (client.connected) return res();
    client.once('connect', () => res());
    setTimeout(res, 5000).unref();
  });

  return {
    mqttUrl,
    httpUrl,
    publicKeyPem: key.publicKeyPem,
    db,
    publisher,
    usage,
    charging,
    api,
    provisioning,
    enrolUrl: enrolListener?.url ?? null,
    close: async () => {
      await enrolListener?.close();
      clearInterval(chargeTimer);
      clearInterval(resealTimer);
      if (usageTimer) clearInterval(usageTimer);
      await http.close();
      await chain.catch(() => undefined);
      await client.endAsync(true).catch(() => undefined);
      if (embedded) await embedded.close();
      db.close();
    },
  };
}
