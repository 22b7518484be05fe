import { createHash, randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { ErrorCode } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import { topics } from '../../protocol/wire/topics.js';
import { withTimeout } from '../../protocol/wire/timeout.js';
import { openPolicy, startEmbeddedBroker, type EmbeddedBroker } from '../broker.js';
import { brokerNodes } from '../broker-urls.js';
import { Provisioning } from '../enrol.js';
import { serverBrokerUsers } from '../mosquitto-auth.js';
import type { Db } from '../registry.js';
import type { ServerOptions } from '../server.js';
import type { Leadership } from './leader.js';
import type { Lists } from './lists.js';
import type { DevicesBroker } from './options.js';

export interface Broker {
  /** Enrolment and device credentials: it writes the broker's users and ACLs, and the embedded broker asks it. */
  provisioning: Provisioning;
  /** The broker the server uses (the embedded one's loopback listener, or --broker). */
  mqttUrl: string;
  /** The embedded broker's TLS listener (mqtts://host:port as bound), when brokerTls was given. */
  mqttsUrl: string | null;
  /** The broker URL enrolled devices get. */
  publicBrokerUrl: string;
  embedded: boolean;
  /** The client subscribed to the devices' journals, status and requests (start/ingest.ts handles its messages). */
  ingestClient: MqttClient;
  /** Resolves once every client is connected, or after 5 s (they keep trying). */
  connected(): Promise<void>;
  /** Lets the queued list changes finish (they publish), then ends the clients and stops the embedded broker. */
  close(): Promise<void>;
}

/**
 * The embedded broker (unless --broker names an external one) and the server's MQTT clients: the publisher's,
 * which republishes every list when it (re)connects, and the ingest's, which (re)subscribes to the devices'
 * topics. With one broker user both are the same client.
 */
export async function startBroker(
  o: ServerOptions,
  deps: { db: Db; publicKeyPem: string; forDevices: DevicesBroker; lists: Lists; leader: Leadership; log: Logger },
): Promise<Broker> {
  const { db, lists, leader, log } = deps;
  const { publisher, usage, serial } = lists;
  let embedded: EmbeddedBroker | null = null;
  const serverUser = 'rc-sync-server';
  const serverPassword = o.brokerPassword ?? randomBytes(18).toString('base64url');
  let mqttUrl = o.brokerUrl;
  const provisioning = new Provisioning({
    db,
    publicKeyPem: deps.publicKeyPem,
    tokenKey: o.tokenKey,
    serverUser: o.brokerUrl ? (o.brokerUsername ?? serverUser) : serverUser,
    serverPassword,
    log: log.child({ component: 'provisioning' }),
    ...(o.mosquitto ? { mosquitto: o.mosquitto } : {}),
    ...(o.nats ? { nats: o.nats } : {}),
    ...deps.forDevices,
    ...(o.enrolTls && o.enrolListen ? { enrolCaPin: o.enrolTls.caPin } : {}),
  });
  if (!mqttUrl) {
    const policy = o.policy ? o.policy(serverUser, serverPassword) : o.deviceAuth ? provisioning.policy(o.deviceAuth) : openPolicy(serverUser, serverPassword);
    embedded = await startEmbeddedBroker({
      port: o.mqttPort ?? 1883,
      policy,
      log: log.child({ component: 'broker' }),
      ...(o.brokerTls ? { tls: { ...o.brokerTls.listen, cert: o.brokerTls.material.chain, key: o.brokerTls.material.key } } : {}),
    });
    mqttUrl = embedded.url;
  }
  const tlsAt = embedded?.tls;
  const mqttsUrl = tlsAt ? `mqtts://${tlsAt.host.includes(':') ? `[${tlsAt.host}]` : tlsAt.host}:${tlsAt.port}` : null;
  const publicBrokerUrl = deps.forDevices.publicBrokerUrl ?? mqttsUrl ?? mqttUrl;
  provisioning.attach(publicBrokerUrl, embedded ? embedded.disconnect : null);
  provisioning.writeBrokerFiles();

  // Mosquitto with server-written files: one user per purpose (mosquitto-auth.ts SERVER_PURPOSES), each its own session;
  // otherwise one connection does both
  const split = o.mosquitto || (o.nats && o.brokerUrl) ? serverBrokerUsers(o.brokerUsername ?? serverUser, serverPassword) : null;
  const nodes = brokerNodes(mqttUrl); // several nodes of a clustered broker: each reconnect goes to the next (issue 16)
  const connectAs = (creds: { username: string; password?: string } | null, purpose: string): MqttClient =>
    noDelay(
      mqtt.connect(nodes.first, {
        ...nodes.options,
        protocolVersion: 4,
        clientId: `rc-sync-server-${purpose}-${randomBytes(4).toString('hex')}`,
        // MQTT 3.1.1: no password without a user name
        ...(creds ?? {}),
        clean: true,
        keepalive: 300, // a million-row import holds the event loop for a while
        reconnectPeriod: 1000,
        connectTimeout: 5000,
        // our 'connect' handler subscribes, with a timeout and retries. mqtt.js's own resubscribe has no timeout, and
        // it records the topics as subscribed when it sends the SUBSCRIBE: a retry of an unanswered one was then
        // answered at once from that record, with no packet sent (seen in server-subscribe-timeout.test.ts)
        resubscribe: false,
      }),
    );
  const single = o.brokerUrl
    ? o.brokerUsername
      ? { username: o.brokerUsername, ...(o.brokerPassword !== undefined ? { password: o.brokerPassword } : {}) }
      : null
    : { username: serverUser, password: serverPassword };
  const pubUser = split?.find((u) => u.purpose === 'publisher');
  const ingestUser = split?.find((u) => u.purpose === 'ingest');
  const pubClient: MqttClient = connectAs(pubUser ? { username: pubUser.user, password: pubUser.password } : single, pubUser ? 'publisher' : 'main');
  const client: MqttClient = ingestUser ? connectAs({ username: ingestUser.user, password: ingestUser.password }, 'ingest') : pubClient;
  const clients = pubClient === client ? [client] : [pubClient, client];
  publisher.setTransport({
    publish: async (topic, payload, retain) => {
      // while the broker is away, skip: everything is republished on reconnection
      if (!pubClient.connected) return;
      await pubClient.publishAsync(topic, payload, { qos: 1, retain });
    },
  });
  usage.setTransport({
    publish: async (topic, payload, retain) => {
      if (!pubClient.connected) return;
      await pubClient.publishAsync(topic, payload, { qos: 1, retain });
    },
  });
  // the handlers below are attached in the turn the clients are made: no connection can come before them
  client.on('connect', () => {
    log.info({ broker: mqttUrl, as: ingestUser?.user }, 'connected to broker');
    // a clustered broker electing new leaders after losing a node refuses some subscriptions for a while, or leaves
    // them unanswered: give up after o.subscribeTimeoutMs and try again; twice unanswered, connect again (mqtt.js then
    // takes the next node of a cluster), as the devices do (device/sync/client.ts) (issue 16)
    const subscribe = (n: number): void => {
      const at = client.stream;
      void withTimeout(
        client.subscribeAsync(ingestTopics(o.sharedIngest === true, ingestShare(ingestUser?.password ?? single?.password)), { qos: 1 }),
        o.subscribeTimeoutMs ?? 10_000,
        'no SUBACK',
      ).then(
        () => n > 0 && log.info({ attempt: n + 1 }, 'subscribed'),
        (e: unknown) => {
          if (client.stream !== at || !client.connected) return; // a new connection subscribes by itself
          log.error({ err: String(e), attempt: n + 1, code: ErrorCode.SyncBrokerUnavailable }, 'subscribe failed');
          if (n >= 1 && String(e).includes('no SUBACK')) {
            log.warn({ broker: mqttUrl }, 'the broker leaves our SUBSCRIBE unanswered: connecting again');
            client.stream.destroy();
            return;
          }
          setTimeout(() => client.stream === at && client.connected && subscribe(n + 1), Math.min(30_000, 1000 * 2 ** n)).unref();
        },
      );
    };
    subscribe(0);
  });
  pubClient.on('connect', () => {
    if (pubClient !== client) log.info({ broker: mqttUrl, as: pubUser?.user }, 'connected to broker');
    if (!leader.isLeader()) return; // the leader publishes (and republishes all on gaining the leadership, start/lists.ts)
    void serial(async () => {
      await publisher.republishAll();
      await usage.republish();
    }).catch((e) => log.error({ err: String(e) }, 'republish failed'));
  });
  for (const c of clients) c.on('error', (e) => log.warn({ err: e.message, code: ErrorCode.SyncBrokerUnavailable }, 'broker connection error'));

  return {
    provisioning,
    mqttUrl,
    mqttsUrl,
    publicBrokerUrl,
    embedded: embedded !== null,
    ingestClient: client,
    connected: () =>
      new Promise<void>((res) => {
        if (clients.every((c) => c.connected)) return res();
        for (const c of clients) c.once('connect', () => clients.every((x) => x.connected) && res());
        setTimeout(res, 5000).unref();
      }),
    close: async () => {
      await lists.drain();
      for (const c of clients) await c.endAsync(true).catch(() => undefined);
      if (embedded) await embedded.close();
    },
  };
}

/**
 * The shared subscription's group: every instance of one installation joins it (docs/postgres.md "Several instances").
 * Mosquitto lets any client with a read right on the topics join a group, and drops the messages its round robin hands
 * a member the read ACL then refuses: a device in the group would make the instances miss every n-th upload until
 * resent. So the group's name comes from the ingest user's broker password, which the instances share and devices do
 * not know: `rc-ingest-` and 16 hex digits of its SHA-256 (`rc-ingest` alone without a password).
 */
export function ingestShare(password: string | undefined): string {
  if (password === undefined || password === '') return 'rc-ingest';
  return `rc-ingest-${createHash('sha256').update(`rc-ingest-share\u0000${password}`).digest('hex').slice(0, 16)}`;
}

/**
 * What the ingest client subscribes to. Shared (--shared-ingest): journals and status through `$share/GROUP/…`
 * (`ingestShare`), each message to one instance (a resent upload may reach another: the (device, seq) key stores it
 * once); requests unshared, every instance gets them and the leader answers (start/ingest.ts).
 */
export function ingestTopics(shared: boolean, group = ingestShare(undefined)): string[] {
  const share = (t: string) => (shared ? `$share/${group}/${t}` : t);
  return [share(topics.allJournals()), share(topics.allStatus()), topics.allRequests()];
}

/**
 * TCP_NODELAY on each connection of the server's client (mqtt.js has no option for it): acks and deltas are small
 * packets that otherwise wait for the broker's delayed ACK, ~40 ms a hop (docs/sync.md "TCP_NODELAY on every hop").
 */
function noDelay(c: MqttClient): MqttClient {
  c.on('connect', () => (c.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true));
  return c;
}
