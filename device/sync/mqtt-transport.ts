import { connect as tcpConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { GuardedStream, MAX_MQTT_PACKET } from '../../protocol/wire/mqtt-guard.js';
import type { SyncTransport, SyncTransportFactory } from './transport.js';

/** Node's codes for a certificate the pinned CA does not vouch for (or one for another name). */
const UNTRUSTED = /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|CERT_|ERR_SSL_.*CERTIFICATE)/;

/** A TLS failure as the device reports it: sync.tls-untrusted when the broker's certificate is not the pinned CA's. */
export function tlsError(e: NodeJS.ErrnoException, brokerUrl: string): Error {
  if (e.code && UNTRUSTED.test(e.code))
    return new RcError(ErrorCode.SyncTlsUntrusted, `the broker's certificate is not trusted (${e.code}): not connected`, { broker: brokerUrl, reason: e.code });
  return e;
}

/**
 * An MQTT client whose socket is read through the packet-size guard: mqtt.js
 * (MQTT 3.1.1) buffers whatever length a packet header announces, so a hostile
 * broker could make a bus hold 250 MB before anything refused it. mqtt:// and
 * tcp:// get the guard over TCP, mqtts:// over TLS with the CA pinned at
 * enrolment (rejectUnauthorized, server name checked); other schemes (ws)
 * go to mqtt.js as they are.
 */
function guardedClient(
  brokerUrls: readonly string[],
  opts: IClientOptions,
  tls: { ca: string; servername?: string } | undefined,
  onRefuse: (what: string) => void,
  onTlsError: (e: Error) => void,
  onTry: (url: string) => void,
): MqttClient {
  const first = new URL(brokerUrls[0]!);
  if (first.protocol !== 'mqtt:' && first.protocol !== 'tcp:' && first.protocol !== 'mqtts:') {
    // ws and the like go to mqtt.js as they are; its own `servers` rotation moves along the list
    const servers = brokerUrls.map((u) => new URL(u)).map((u) => ({ host: u.hostname, port: Number(u.port), protocol: u.protocol.replace(':', '') as 'ws' }));
    return mqtt.connect(brokerUrls[0]!, { ...opts, ...(servers.length > 1 ? { servers } : {}) });
  }
  // failover (issue 16): each connection attempt after a lost or failed one goes to the next URL of the list, round
  let next = 0;
  const socket = () => {
    const brokerUrl = brokerUrls[next % brokerUrls.length]!;
    next++;
    onTry(brokerUrl);
    const u = new URL(brokerUrl);
    const secure = u.protocol === 'mqtts:';
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || (secure ? 8883 : 1883));
    const servername = tls?.servername ?? (isIP(host) ? undefined : host);
    // TCP_NODELAY: an upload and its ack are single small packets; with Nagle's algorithm and the peer's delayed ACK
    // each waited ~40 ms more per hop (measured: MQTT round trip p50 73 ms → 2.8 ms on loopback)
    if (!secure) return tcpConnect({ host, port, noDelay: true });
    // without a pinned CA the system's trust store decides (a broker with a public certificate)
    const s = tlsConnect({
      host,
      port,
      ...(servername ? { servername } : {}),
      ...(tls ? { ca: tls.ca } : {}),
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    });
    s.setNoDelay(true);
    s.once('error', (e: NodeJS.ErrnoException) => {
      const coded = tlsError(e, brokerUrl);
      if (coded !== e) onTlsError(coded);
    });
    return s;
  };
  const build = () =>
    new GuardedStream(socket(), { connect: null, packet: MAX_MQTT_PACKET }, (r) =>
      onRefuse(`${r.reason}: packet type ${r.packetType} announced ${r.announced} bytes, limit ${r.limit}`),
    );
  const host = first.hostname.replace(/^\[|\]$/g, '');
  return new mqtt.MqttClient(build, { ...opts, host, port: Number(first.port || (first.protocol === 'mqtts:' ? 8883 : 1883)), protocol: 'mqtt' });
}

/**
 * The production transport: MQTT 3.1.1, clean session, no automatic reconnect (the client backs off itself).
 * What the device sends (journal batches, status, requests, its will) goes at QoS 1; what it subscribes to, at QoS 0.
 *
 * Why QoS 0 is enough for every subscription (issue 16, docs/sync.md "Subscriptions at QoS 0"): a subscription's QoS
 * only governs server → device messages, and with a clean session MQTT 3.1.1 redelivers a QoS 1 message only within
 * one connection's life, never across a reconnect — exactly where QoS 0 loses one too. Every server → device message
 * is retained (manifests, deltas, chunks, configs, the journal-ack) and comes again with every (re)subscribe, or is
 * made good by the next one (a usage delta by the next usage snapshot, ≤ 60 s). A missed delta is seen by version
 * (the manifest lists the chain; the planner waits for it, then fetches the snapshot); a missed journal-ack only
 * delays the device's ack: it keeps every entry until an ack comes and sends them again after `ackTimeoutMs`, and
 * the server dedups. The journal itself, device → server, stays QoS 1 (the PUBACK) and the server's own ingest
 * subscription QoS 1 (sync-server/start/broker.ts): nothing acknowledged can be lost.
 * The gain: on NATS every QoS 1 subscription is a JetStream consumer made through the meta leader (≈ 20/s here,
 * six per bus: 10,000 buses could not even finish subscribing); a QoS 0 one is a plain core-NATS subscription
 * (test/integration/cluster-sync.test.ts counts them).
 */
export const createMqttTransport: SyncTransportFactory = (p, on) => {
  let current = p.brokerUrl;
  const c = guardedClient(
    [p.brokerUrl, ...(p.failoverUrls ?? [])],
    {
      protocolVersion: 4,
      clientId: p.clientId,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 0, // the sync client's own backoff
      connectTimeout: 5000,
      username: p.username,
      password: p.password,
      will: { topic: p.will.topic, payload: p.will.payload, qos: 1, retain: true },
    },
    p.tls,
    (what) => on.error(new Error(`broker connection dropped: ${what}`)),
    (e) => on.error(e),
    (url) => (current = url),
  );
  c.on('connect', () => on.connect());
  c.on('message', (topic, payload, packet) => on.message(topic, payload, packet.retain));
  c.on('close', () => on.close());
  c.on('error', (e) => on.error(e));
  const t: SyncTransport = {
    get connected() {
      return c.connected;
    },
    get url() {
      return current;
    },
    reconnect: () => void c.reconnect(),
    drop: () => c.stream?.destroy(),
    subscribe: async (topics) => {
      // QoS 0 on purpose: see above. A refused one still comes back as 0x80 in the SUBACK, which rejects here
      await c.subscribeAsync([...topics], { qos: 0 });
    },
    unsubscribe: (topics) => void c.unsubscribe([...topics]),
    publish: async (topic, payload, retain) => {
      await c.publishAsync(topic, payload, { qos: 1, retain });
    },
    close: async () => {
      await c.endAsync(true);
    },
  };
  return t;
};
