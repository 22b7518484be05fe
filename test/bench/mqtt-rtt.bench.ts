/**
 * npm run bench:mqtt-rtt [-- --n 100]
 *
 * What Nagle's algorithm costs an MQTT request and its answer (docs/sync.md "TCP_NODELAY on every hop"): an aedes
 * broker and two mqtt.js clients on loopback; client A publishes (QoS 1) a 300-byte message that client B answers
 * with a QoS 1 publish of its own, as a journal upload and its ack go. Timed N times with TCP_NODELAY off
 * everywhere (Node's default), on the broker's sockets only, on the clients' only, and on both (what the product
 * does). The last line is one JSON object.
 */
import { createServer, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { percentiles } from '../support/import-probe.js';

const args = process.argv.slice(2);
const i = args.indexOf('--n');
const N = i >= 0 ? Number(args[i + 1]) : 100;

async function roundTrips(brokerNoDelay: boolean, clientNoDelay: boolean): Promise<ReturnType<typeof percentiles>> {
  const aedes = await Aedes.createBroker();
  const server = createServer((s: Socket) => {
    if (brokerNoDelay) s.setNoDelay(true);
    aedes.handle(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const clients: MqttClient[] = [];
  try {
    const a = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'rtt-a', protocolVersion: 4, connectTimeout: 10_000 });
    clients.push(a);
    const b = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'rtt-b', protocolVersion: 4, connectTimeout: 10_000 });
    clients.push(b);
    if (clientNoDelay) for (const c of clients) (c.stream as Socket).setNoDelay(true);
    await b.subscribeAsync('rtt/req', { qos: 1 });
    b.on('message', (_t, p) => void b.publishAsync('rtt/res', p, { qos: 1 }));
    await a.subscribeAsync('rtt/res', { qos: 1 });
    const times: number[] = [];
    for (let k = 0; k < N; k++) {
      const t = performance.now();
      const answered = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
        a.once('message', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      await a.publishAsync('rtt/req', Buffer.alloc(300), { qos: 1 });
      await answered;
      times.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
    return percentiles(times);
  } finally {
    for (const c of clients) await c.endAsync(true);
    await new Promise<void>((r) => aedes.close(() => r()));
    server.close();
  }
}

const result: Record<string, ReturnType<typeof percentiles>> = {};
for (const [name, broker, client] of [
  ['default', false, false],
  ['brokerOnly', true, false],
  ['clientsOnly', false, true],
  ['both', true, true],
] as const) {
  result[name] = await roundTrips(broker, client);
  console.log(`${name}: round trip ${JSON.stringify(result[name])} ms`);
}
console.log(JSON.stringify({ bench: 'mqtt-rtt', n: N, loadAvg: Number((await import('node:os')).loadavg()[0]!.toFixed(1)), ...result }));
