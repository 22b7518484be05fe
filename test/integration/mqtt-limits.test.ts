import { readFileSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../protocol/log.js';
import { mosquittoRig } from '../support/rig/broker.js';
import { waitFor } from '../support/wait.js';
import { MAX_CONNECT_PACKET, MAX_MQTT_PACKET, PacketScanner } from '../../protocol/wire/mqtt-guard.js';
import { openPolicy, startEmbeddedBroker, type EmbeddedBroker } from '../../sync-server/broker.js';
import { createMqttTransport } from '../../device/sync/mqtt-transport.js';

/** MQTT remaining-length bytes (variable length, 7 bits a byte). */
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

describe('MQTT packet scanner (pure)', () => {
  const limits = { connect: 100, packet: 1000 };

  it('passes packets within the limits whatever the slicing, and raises the limit after authentication', () => {
    const s = new PacketScanner(limits);
    const connect = Buffer.from([0x10, ...varint(50), ...Buffer.alloc(50)]);
    for (const b of connect) expect(s.feed(Buffer.from([b]))).toBeNull(); // one byte at a time
    s.authenticated();
    const publish = Buffer.from([0x30, ...varint(900), ...Buffer.alloc(900)]);
    expect(s.feed(publish.subarray(0, 2))).toBeNull();
    expect(s.feed(publish.subarray(2))).toBeNull();
  });

  it('refuses a CONNECT over its limit from its header alone', () => {
    const s = new PacketScanner(limits);
    expect(s.feed(Buffer.from([0x10, ...varint(200_000_000)]))).toMatchObject({ reason: 'too-large', packetType: 1 });
  });

  it('refuses a first packet that is not a CONNECT', () => {
    const s = new PacketScanner(limits);
    expect(s.feed(Buffer.from([0x30, 2, 0, 0]))).toMatchObject({ reason: 'not-connect', packetType: 3 });
  });

  it('keeps the CONNECT limit for every packet until authenticated', () => {
    const s = new PacketScanner(limits);
    expect(s.feed(Buffer.from([0x10, 2, 0, 0]))).toBeNull();
    expect(s.feed(Buffer.from([0x30, ...varint(500)]))).toMatchObject({ reason: 'too-large', limit: 100 });
  });

  it('refuses a remaining length of more than four bytes', () => {
    const s = new PacketScanner({ connect: null, packet: 1000 });
    expect(s.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toMatchObject({ reason: 'bad-length' });
  });

  it('a client-side scanner (no CONNECT stage) bounds every packet by the packet limit', () => {
    const s = new PacketScanner({ connect: null, packet: 1000 });
    expect(s.feed(Buffer.from([0x20, 2, 0, 0]))).toBeNull(); // CONNACK
    expect(s.feed(Buffer.from([0x30, ...varint(250 * 1024 * 1024)]))).toMatchObject({ reason: 'too-large' });
  });
});

describe('the embedded broker bounds what it buffers', () => {
  let broker: EmbeddedBroker;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    broker = await startEmbeddedBroker({ port: 0, policy: openPolicy('server', 'pw'), log: createLogger({ level: 'silent' }) });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await broker.close();
  });

  const closedWithin = (s: Socket, ms: number) =>
    new Promise<boolean>((res) => {
      if (s.destroyed) return res(true);
      const t = setTimeout(() => res(false), ms);
      s.once('close', () => {
        clearTimeout(t);
        res(true);
      });
    });

  const raw = () =>
    new Promise<Socket>((res, rej) => {
      const s = tcpConnect(broker.port, '127.0.0.1', () => res(s));
      s.on('error', () => {}); // reset by the broker is the expected outcome
      s.once('error', rej);
      sockets.push(s);
    });

  it('an unauthenticated CONNECT announcing 200 MB is dropped at once and costs no memory', async () => {
    const before = process.memoryUsage().rss;
    const conns: Socket[] = [];
    const mb = Buffer.alloc(1024 * 1024, 0x2c);
    for (let i = 0; i < 8; i++) {
      const s = await raw();
      // the header announces 200 MB; then up to 32 MB of it is sent, for as long as the broker keeps the socket open
      s.write(Buffer.from([0x10, ...varint(200 * 1024 * 1024)]));
      for (let k = 0; k < 32 && !s.destroyed; k++) await new Promise<void>((res) => (s.write(mb) ? res() : s.once('drain', res).once('close', res)));
      conns.push(s);
    }
    for (const s of conns) expect(await closedWithin(s, 5000)).toBe(true);
    const grownMb = (process.memoryUsage().rss - before) / 1024 / 1024;
    expect(grownMb).toBeLessThan(64); // without the guard aedes buffers all of it: 256 MB here, 1.4 GB in the finding
  });

  it('a first packet that is not a CONNECT is dropped', async () => {
    const s = await raw();
    s.write(Buffer.from([0x30, 5, 0, 1, 0x61, 0x62, 0x63]));
    expect(await closedWithin(s, 5000)).toBe(true);
  });

  it('an authenticated client publishes a list-sized message; one over the limit is dropped', async () => {
    const sub = await mqtt.connectAsync(broker.url, { clientId: 'listener', username: 'server', password: 'pw', reconnectPeriod: 0 });
    const pub = await mqtt.connectAsync(broker.url, { clientId: 'server-pub', username: 'server', password: 'pw', reconnectPeriod: 0 });
    try {
      await sub.subscribeAsync('rc/v1/big', { qos: 1 });
      const got = new Promise<number>((res) => sub.on('message', (_t, p) => res(p.length)));
      const size = MAX_MQTT_PACKET - 1024;
      await pub.publishAsync('rc/v1/big', Buffer.alloc(size, 1), { qos: 1 });
      expect(await got).toBe(size);

      const closed = new Promise<void>((res) => pub.stream.once('close', () => res()));
      pub.publish('rc/v1/big', Buffer.alloc(MAX_MQTT_PACKET + 1, 1), { qos: 0 });
      await closed;
      expect(MAX_CONNECT_PACKET).toBeLessThan(MAX_MQTT_PACKET);
    } finally {
      await sub.endAsync(true);
      await pub.endAsync(true);
    }
  });
});

describe('the device client bounds what it buffers', () => {
  it('a hostile broker announcing a 250 MB publish is dropped from its header, not buffered', async () => {
    const mb = Buffer.alloc(1024 * 1024, 0x41);
    let sent = 0;
    const rogue = createServer((sock) => {
      sock.on('error', () => {});
      sock.once('data', async () => {
        sock.write(Buffer.from([0x20, 0x02, 0x00, 0x00])); // CONNACK, accepted
        sock.write(Buffer.from([0x30, ...varint(250 * 1024 * 1024), 0x00, 0x01, 0x74])); // PUBLISH to "t", 250 MB announced
        for (let i = 0; i < 64 && !sock.destroyed; i++) {
          await new Promise<void>((res) => (sock.write(mb) ? res() : sock.once('drain', res).once('close', res)));
          sent++;
        }
      });
    });
    await new Promise<void>((res) => rogue.listen(0, '127.0.0.1', res));
    const port = (rogue.address() as { port: number }).port;
    const errors: string[] = [];
    let closed = 0;
    const before = process.memoryUsage().rss;
    const t = createMqttTransport(
      { brokerUrl: `mqtt://127.0.0.1:${port}`, clientId: 'bus-x', will: { topic: 'rc/v1/device/bus-x/status', payload: Buffer.alloc(0) } },
      { connect: () => {}, message: () => {}, close: () => void closed++, error: (e) => void errors.push(e.message) },
    );
    try {
      await waitFor(() => closed > 0, { timeoutMs: 10_000, what: 'the client to drop the connection' });
      expect(errors.join(' ')).toMatch(/too-large/);
      expect(sent).toBeLessThan(64); // the rogue could not push it all
      expect((process.memoryUsage().rss - before) / 1024 / 1024).toBeLessThan(64);
    } finally {
      await t.close();
      rogue.close();
    }
  });
});

describe('Mosquitto as documented bounds what it buffers', () => {
  it('max_packet_size (docs/provisioning.md) equals the embedded broker limit, and a CONNECT announcing 200 MB is dropped', async () => {
    expect(readFileSync(join(import.meta.dirname, '../../docs/provisioning.md'), 'utf8')).toContain(`max_packet_size ${MAX_MQTT_PACKET}`);
    const b = await mosquittoRig.start();
    try {
      const port = Number(new URL(b.url).port);
      const s = await new Promise<Socket>((res, rej) => {
        const c = tcpConnect(port, '127.0.0.1', () => res(c));
        c.on('error', () => {});
        c.once('error', rej);
      });
      s.write(Buffer.from([0x10, ...varint(200 * 1024 * 1024)]));
      const closed = await new Promise<boolean>((res) => {
        const t = setTimeout(() => res(false), 5000);
        s.once('close', () => {
          clearTimeout(t);
          res(true);
        });
        s.write(Buffer.alloc(64 * 1024, 0x2c));
      });
      s.destroy();
      expect(closed).toBe(true);
    } finally {
      await b.close();
    }
  });
});
