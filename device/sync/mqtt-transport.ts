import { connect as tcpConnect } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { GuardedStream, MAX_MQTT_PACKET } from '../../protocol/wire/mqtt-guard.js';
import type { SyncTransport, SyncTransportFactory } from './transport.js';

/**
 * An MQTT client whose socket is read through the packet-size guard: mqtt.js
 * (MQTT 3.1.1) buffers whatever length a packet header announces, so a hostile
 * broker could make a bus hold 250 MB before anything refused it. Plain TCP
 * URLs (mqtt://, tcp://) get the guard; other schemes go to mqtt.js as they are.
 */
function guardedClient(brokerUrl: string, opts: IClientOptions, onRefuse: (what: string) => void): MqttClient {
  const u = new URL(brokerUrl);
  if (u.protocol !== 'mqtt:' && u.protocol !== 'tcp:') return mqtt.connect(brokerUrl, opts);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 1883);
  const build = () =>
    new GuardedStream(tcpConnect({ host, port }), { connect: null, packet: MAX_MQTT_PACKET }, (r) =>
      onRefuse(`${r.reason}: packet type ${r.packetType} announced ${r.announced} bytes, limit ${r.limit}`),
    );
  return new mqtt.MqttClient(build, { ...opts, host, port, protocol: 'mqtt' });
}

/** The production transport: MQTT 3.1.1, clean session, QoS 1, no automatic reconnect (the client backs off itself). */
export const createMqttTransport: SyncTransportFactory = (p, on) => {
  const c = guardedClient(
    p.brokerUrl,
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
    (what) => on.error(new Error(`broker connection dropped: ${what}`)),
  );
  c.on('connect', () => on.connect());
  c.on('message', (topic, payload, packet) => on.message(topic, payload, packet.retain));
  c.on('close', () => on.close());
  c.on('error', (e) => on.error(e));
  const t: SyncTransport = {
    get connected() {
      return c.connected;
    },
    reconnect: () => void c.reconnect(),
    subscribe: async (topics) => {
      await c.subscribeAsync([...topics], { qos: 1 });
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
