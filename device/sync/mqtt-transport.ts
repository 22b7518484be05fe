import mqtt from 'mqtt';
import type { SyncTransport, SyncTransportFactory } from './transport.js';

/** The production transport: MQTT 3.1.1, clean session, QoS 1, no automatic reconnect (the client backs off itself). */
export const createMqttTransport: SyncTransportFactory = (p, on) => {
  const c = mqtt.connect(p.brokerUrl, {
    protocolVersion: 4,
    clientId: p.clientId,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 0, // the sync client's own backoff
    connectTimeout: 5000,
    username: p.username,
    password: p.password,
    will: { topic: p.will.topic, payload: p.will.payload, qos: 1, retain: true },
  });
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
