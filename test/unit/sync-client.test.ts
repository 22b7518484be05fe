import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../device/store/index.js';
import { SyncClient, type SyncClientOptions } from '../../device/sync/index.js';
import type { SyncTransport, SyncTransportFactory, TransportHandlers, TransportParams } from '../../device/sync/index.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { Scope, StopEntry, TransitEntry } from '../../protocol/lists.js';
import { createLogger } from '../../protocol/log.js';
import { encodeRecords } from '../../protocol/wire/codec.js';
import { sealConfig, sealDelta, sealJournalAck, sealManifest, splitChunks } from '../../protocol/wire/chunking.js';
import { generateSigningKey, publicKeyPem } from '../../protocol/wire/envelope.js';
import { JournalBatch, type ChunkRef, type DeltaRef } from '../../protocol/wire/messages.js';
import { topics } from '../../protocol/wire/topics.js';
import { waitFor } from '../support/wait.js';

/** MQTT topic filter match (`+` one level, `#` the rest). */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/** A broker in this process: retained messages, wildcard subscriptions, asynchronous delivery, a last will. */
class MemoryBroker extends EventEmitter {
  readonly retained = new Map<string, Buffer>();
  /** A node in trouble: SUBSCRIBE and PUBLISH are never answered (the socket stays up). */
  hangSubscribe = false;
  hangPublish = false;
  connections = 0;
  private readonly conns = new Set<MemoryConnection>();

  publish(topic: string, payload: Buffer, retain: boolean): void {
    if (retain) {
      if (payload.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, payload);
    }
    for (const c of this.conns) c.deliver(topic, payload);
    this.emit('publish', topic, payload);
  }

  attach(c: MemoryConnection): void {
    this.conns.add(c);
  }

  detach(c: MemoryConnection, will: boolean): void {
    if (!this.conns.delete(c)) return;
    if (will) this.publish(c.params.will.topic, c.params.will.payload, true);
  }

  readonly factory: SyncTransportFactory = (params, on) => {
    const c = new MemoryConnection(this, params, on);
    c.reconnect();
    return c;
  };
}

class MemoryConnection implements SyncTransport {
  connected = false;
  readonly filters = new Set<string>();
  constructor(
    private readonly broker: MemoryBroker,
    readonly params: TransportParams,
    private readonly on: TransportHandlers,
  ) {}

  reconnect(): void {
    setImmediate(() => {
      this.broker.connections++;
      this.filters.clear(); // clean session
      this.connected = true;
      this.broker.attach(this);
      this.on.connect();
    });
  }

  deliver(topic: string, payload: Buffer, retained = false): void {
    if (![...this.filters].some((f) => matches(f, topic))) return;
    setImmediate(() => this.connected && this.on.message(topic, payload, retained));
  }

  async subscribe(filters: readonly string[]): Promise<void> {
    if (this.broker.hangSubscribe) return new Promise<void>(() => undefined);
    for (const f of filters) {
      this.filters.add(f);
      for (const [topic, payload] of this.broker.retained) if (matches(f, topic)) this.deliver(topic, payload, true);
    }
  }

  unsubscribe(filters: readonly string[]): void {
    for (const f of filters) this.filters.delete(f);
  }

  async publish(topic: string, payload: Buffer, retain: boolean): Promise<void> {
    if (!this.connected) throw new Error('not connected');
    if (this.broker.hangPublish) {
      this.broker.emit('hung', topic);
      return new Promise<void>(() => undefined);
    }
    this.broker.publish(topic, payload, retain);
  }

  /** The socket destroyed under the client: the will goes out, the client reconnects by itself. */
  drop(): void {
    if (!this.connected) return;
    this.connected = false;
    this.broker.detach(this, true);
    this.on.close();
  }

  async close(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    this.broker.detach(this, false);
    this.on.close();
  }
}

function quietLogger() {
  return createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
}

async function waitUntil(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves with the first event `name` whose payload satisfies `pred`. */
function nextEvent<T>(em: EventEmitter, name: string, pred: (v: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const f = (v: T) => {
      if (!pred(v)) return;
      em.off(name, f);
      resolve(v);
    };
    em.on(name, f);
  });
}

const T0 = new Date('2026-11-24T09:00:00Z');
const DAY = 86_400_000;
const token = (i: number) => i.toString(16).padStart(32, '0');
const transit = (from: number, n: number): TransitEntry[] =>
  Array.from({ length: n }, (_, i) => ({ token: token(from + i), cardExpiry: '2030-12', benefits: [] }));
const stops = (from: number, n: number): StopEntry[] => Array.from({ length: n }, (_, i) => ({ token: token(from + i), reason: 'lost', since: '2026-11-01' }));

/** The server's signed manifest of `scope` at `version`, retained (one record per entry in these tests). */
function publishManifest(broker: MemoryBroker, key: KeyObject, scope: Scope, version: number, chunks: ChunkRef[], deltas: DeltaRef[] = []): void {
  const records = chunks.reduce((a, c) => a + c.records, 0);
  broker.publish(topics.manifest(scope), sealManifest({ scope, version, entries: records, records, chunks, deltas, now: T0, ttlMs: DAY }, key), true);
}

describe('sync client over an in-memory transport (no broker)', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  function device(broker: MemoryBroker, extra: Partial<SyncClientOptions> = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'rc-sync-unit-'));
    const store = Store.open(join(dir, 'device.sqlite'), { deviceId: 'bus-mem', synchronous: 'OFF' });
    const key = generateSigningKey();
    let clock = T0.getTime();
    const client = new SyncClient({
      store,
      deviceId: 'bus-mem',
      brokerUrl: 'memory://',
      scopes: ['transit', 'stoplist'],
      serverPublicKey: publicKeyPem(key.publicKey),
      stagingDir: join(dir, 'staging'),
      log: quietLogger(),
      now: () => new Date(clock),
      transport: broker.factory,
      ...extra,
    });
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanup.push(() => store.close());
    cleanup.push(() => client.stop());
    return { store, client, key: key.privateKey, advance: (ms: number) => (clock += ms) };
  }

  it('one full sync: a snapshot in chunks, a delta announced by the manifest, then a live delta', async () => {
    const broker = new MemoryBroker();
    const { store, client, key } = device(broker);
    // the server's retained state before the device connects
    const { refs, payloads } = splitChunks(3, encodeRecords('transit', transit(0, 130)), 50);
    payloads.forEach((p, n) => broker.publish(topics.chunk('transit', 3, n), p, true));
    publishManifest(broker, key, 'transit', 3, refs);
    const sd = sealDelta('stoplist', 0, 1, encodeRecords('stoplist', stops(1000, 2)), T0, DAY, key);
    broker.publish(topics.delta('stoplist', 0, 1), sd.payload, true);
    const s1 = splitChunks(1, encodeRecords('stoplist', stops(1000, 2)), 50);
    s1.payloads.forEach((p, n) => broker.publish(topics.chunk('stoplist', 1, n), p, true));
    publishManifest(broker, key, 'stoplist', 1, s1.refs, [sd.ref]);

    const applied: { scope: string; version: number; via: string }[] = [];
    const progress: number[] = [];
    client.on('applied', (a: { scope: string; version: number; via: string }) => applied.push(a));
    client.on('progress', (p: { have: number }) => progress.push(p.have));
    const refused: unknown[] = [];
    client.on('refused', (r) => refused.push(r));
    const appliedTo = (scope: string) => nextEvent(client, 'applied', (a: { scope: string }) => a.scope === scope);
    const both = Promise.all([appliedTo('transit'), appliedTo('stoplist')]);
    client.start();
    await both;
    expect(applied.sort((a, b) => a.scope.localeCompare(b.scope))).toEqual([
      { scope: 'stoplist', version: 1, via: 'delta' },
      { scope: 'transit', version: 3, via: 'snapshot' },
    ]);
    expect(progress).toEqual([1, 2, 3]);
    expect(store.listVersion('transit')).toBe(3);
    expect(store.entryCount('transit')).toBe(130);
    expect(store.entryCount('stoplist')).toBe(2);

    // a live change: delta 3→4 then its manifest
    const d4 = sealDelta('transit', 3, 4, encodeRecords('transit', transit(500, 1), [token(0)]), T0, DAY, key);
    const live = nextEvent(client, 'applied', (a: { version: number }) => a.version === 4);
    broker.publish(topics.delta('transit', 3, 4), d4.payload, true);
    const v4 = splitChunks(4, encodeRecords('transit', [...transit(1, 129), ...transit(500, 1)]), 50);
    publishManifest(broker, key, 'transit', 4, v4.refs, [d4.ref]);
    expect(await live).toEqual({ scope: 'transit', version: 4, via: 'delta' });
    expect(store.entryCount('transit')).toBe(130);
    expect(store.readView(token(500)).transit).not.toBeNull();
    expect(store.readView(token(0)).transit).toBeNull();
    expect(refused).toEqual([]);
    await client.stop();
    // the last status says offline with the versions held
    const status: unknown = JSON.parse(broker.retained.get(topics.status('bus-mem'))!.toString());
    expect(status).toMatchObject({ device: 'bus-mem', online: false, lists: { transit: 4, stoplist: 1 } });
  });

  it('a manifest that expired by the injected clock is refused and nothing is fetched', async () => {
    const broker = new MemoryBroker();
    const { store, client, key, advance } = device(broker, { scopes: ['transit'] });
    const { refs, payloads } = splitChunks(2, encodeRecords('transit', transit(0, 10)), 50);
    payloads.forEach((p, n) => broker.publish(topics.chunk('transit', 2, n), p, true));
    publishManifest(broker, key, 'transit', 2, refs);
    advance(2 * DAY);
    const refused = nextEvent<{ code: string }>(client, 'refused');
    client.start();
    expect((await refused).code).toBe(ErrorCode.SyncExpired);
    expect(store.listVersion('transit')).toBe(0);
  });

  it('the journal goes up in batches and is acknowledged; without an ack it is sent again once the injected clock passes the timeout', async () => {
    const broker = new MemoryBroker();
    const { store, client, key, advance } = device(broker, { batchSize: 3, ackTimeoutMs: 10_000 });
    for (let i = 0; i < 7; i++) store.appendEvent({ wallTime: T0.getTime() + i * 1000, token: token(i), kind: 'turnstile', reason: 'not-passed' });
    const batches: number[][] = [];
    let acking = true;
    broker.on('publish', (topic: string, payload: Buffer) => {
      if (topic !== topics.journal('bus-mem')) return;
      const b = JournalBatch.parse(JSON.parse(payload.toString()));
      expect(b.device).toBe('bus-mem');
      const seqs = b.entries.map((e) => e.seq);
      batches.push(seqs);
      if (acking) broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-mem', seqs.at(-1)!, T0, key), true);
    });
    const all = nextEvent(client, 'acked', (a: { upTo: number }) => a.upTo === 7);
    client.start();
    await all;
    expect(batches).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(store.ackedSeq()).toBe(7);
    expect(store.journalBacklog()).toBe(0);

    // the server stops acknowledging: the next tap goes up once, and again only after the timeout on the injected clock
    acking = false;
    store.appendEvent({ wallTime: T0.getTime() + 60_000, token: token(9), kind: 'turnstile', reason: 'not-passed' });
    const sent = nextEvent(broker, 'publish', (t: string) => t === topics.journal('bus-mem'));
    client.notify();
    await sent;
    expect(batches.at(-1)).toEqual([8]);
    client.notify();
    await new Promise((r) => setImmediate(r)); // the pump notify() schedules has run
    expect(batches).toHaveLength(4); // not resent before the timeout
    advance(10_001);
    acking = true;
    const acked = nextEvent(client, 'acked', (a: { upTo: number }) => a.upTo === 8);
    client.notify();
    await acked;
    expect(batches.slice(3)).toEqual([[8], [8]]);
    expect(store.journalBacklog()).toBe(0);
  });

  it('a SUBSCRIBE never answered is given up after the ack timeout, tried again, and then the connection is made again', async () => {
    const broker = new MemoryBroker();
    broker.hangSubscribe = true;
    const { client } = device(broker, { ackTimeoutMs: 50, reconnectMinMs: 10, reconnectMaxMs: 20 });
    const connected = nextEvent(client, 'connected');
    client.start();
    await waitUntil(() => broker.connections >= 2);
    broker.hangSubscribe = false;
    await connected;
  });

  it('a PUBLISH never answered does not hold the uploads; with no ack for three timeouts the device connects again', async () => {
    const broker = new MemoryBroker();
    broker.hangPublish = true;
    const { store, client, key, advance } = device(broker, { ackTimeoutMs: 100, reconnectMinMs: 10, reconnectMaxMs: 20 });
    store.appendEvent({ wallTime: T0.getTime(), token: token(1), kind: 'turnstile', reason: 'not-passed' });
    const hung: string[] = [];
    broker.on('hung', (t: string) => t === topics.journal('bus-mem') && hung.push(t));
    const connected = nextEvent(client, 'connected');
    client.start();
    await connected;
    await waitUntil(() => hung.length >= 1);
    // after the timeout on the injected clock it is sent again, not held by the publish still in flight
    advance(101);
    client.notify();
    await waitUntil(() => hung.length >= 2);
    expect(broker.connections).toBe(1);
    // no ack for three timeouts: the connection is dropped and made again; the node answers now and the entry is acknowledged
    broker.hangPublish = false;
    broker.on('publish', (topic: string, payload: Buffer) => {
      if (topic !== topics.journal('bus-mem')) return;
      const b = JournalBatch.parse(JSON.parse(payload.toString()));
      broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-mem', b.entries.at(-1)!.seq, T0, key), true);
    });
    const acked = nextEvent(client, 'acked', (a: { upTo: number }) => a.upTo === 1);
    advance(301);
    client.notify();
    await acked;
    expect(broker.connections).toBe(2);
    expect(store.journalBacklog()).toBe(0);
  });

  it('an ack for another device is refused and acknowledges nothing', async () => {
    const broker = new MemoryBroker();
    const { store, client, key } = device(broker);
    store.appendEvent({ wallTime: T0.getTime(), token: token(1), kind: 'turnstile', reason: 'not-passed' });
    const connected = nextEvent(client, 'connected');
    client.start();
    await connected;
    const refused = nextEvent<{ code: string }>(client, 'refused');
    broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-other', 1, T0, key), false);
    expect((await refused).code).toBe(ErrorCode.SyncDeviceMismatch);
    expect(store.ackedSeq()).toBe(0);
  });

  /**
   * Appends `n` events and runs the client against a server that stores batches and acknowledges (signed) the
   * highest contiguous seq it holds, as the real one does; resolves once all are acked.
   */
  async function uploadAll(broker: MemoryBroker, d: ReturnType<typeof device>, n: number, sent: number[][]) {
    const stored = new Set<number>();
    for (let i = 0; i < n; i++) d.store.appendEvent({ wallTime: T0.getTime() + i * 1000, token: token(i), kind: 'turnstile', reason: 'not-passed' });
    broker.on('publish', (topic: string, payload: Buffer) => {
      if (topic !== topics.journal('bus-mem')) return;
      const seqs = JournalBatch.parse(JSON.parse(payload.toString())).entries.map((e) => e.seq);
      sent.push(seqs);
      seqs.forEach((q) => stored.add(q));
      let upTo = 0;
      while (stored.has(upTo + 1)) upTo++;
      broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-mem', upTo, T0, d.key), true);
    });
    const all = nextEvent(d.client, 'acked', (a: { upTo: number }) => a.upTo === n);
    d.client.start();
    await all;
    /** The server loses what it stored above `seq` (its registry restored from an older copy) and says so. */
    return (seq: number) => {
      for (const q of [...stored]) if (q > seq) stored.delete(q);
      broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-mem', seq, T0, d.key), true);
    };
  }

  it('a server ack lower than the device ack (the server lost acknowledged entries) makes the device send them again', async () => {
    const broker = new MemoryBroker();
    const d = device(broker, { batchSize: 4, ackTimeoutMs: 300 }); // the lower ack is believed when no higher one comes within this
    const sent: number[][] = [];
    const lose = await uploadAll(broker, d, 10, sent);
    expect(d.store.ackedSeq()).toBe(10);
    sent.length = 0;
    const rewound = nextEvent<{ upTo: number; from: number }>(d.client, 'rewound');
    const again = nextEvent(d.client, 'acked', (a: { upTo: number }) => a.upTo === 10);
    lose(3);
    expect(await rewound).toEqual({ upTo: 3, from: 10 });
    await again;
    expect(sent).toEqual([
      [10], // the probe: the server's answer to it is 3 again, and no higher ack comes
      [4, 5, 6, 7],
      [8, 9, 10],
    ]);
    expect(d.store.ackedSeq()).toBe(10);
    expect(d.store.journalBacklog()).toBe(0);
  });

  it('lower acks that arrive after a higher one (two server instances, out of order) are not believed: the probe answers with the true ack, nothing is sent again', async () => {
    const broker = new MemoryBroker();
    const d = device(broker, { batchSize: 4, ackTimeoutMs: 300 });
    const sent: number[][] = [];
    await uploadAll(broker, d, 10, sent);
    sent.length = 0;
    const rewinds: unknown[] = [];
    d.client.on('rewound', (r: unknown) => rewinds.push(r));
    // two older acks of the other instances, delivered last (the fake server answers the probe at once: 10)
    broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-mem', 6, T0, d.key), true);
    broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-mem', 8, T0, d.key), true);
    await waitFor(() => sent.length > 0, { timeoutMs: 5000, what: 'the probe' });
    await new Promise((r) => setTimeout(r, 600)); // past the doubt's ackTimeoutMs
    expect(sent).toEqual([[10]]); // the probe only
    expect(rewinds).toEqual([]);
    expect(d.store.ackedSeq()).toBe(10);
    expect(d.store.journalBacklog()).toBe(0);
  });

  it('entries the server lost but the device already pruned are a coded warning with the gap; the rest are sent again', async () => {
    const broker = new MemoryBroker();
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const d = device(broker, { batchSize: 10, log, ackTimeoutMs: 300 });
    const sent: number[][] = [];
    const lose = await uploadAll(broker, d, 6, sent);
    // entries 1..6 are acknowledged; 1..4 are older than the cut and pruned
    expect(d.store.pruneAcked(T0.getTime() + 3500)).toBe(4);
    sent.length = 0;
    const resent = nextEvent(broker, 'publish', (t: string) => t === topics.journal('bus-mem'));
    const again = nextEvent(d.client, 'rewound');
    lose(2);
    await resent;
    expect(sent[0]).toEqual([6]); // the probe, whose answer is 2 again
    await again;
    await waitFor(() => sent.length >= 2, { timeoutMs: 5000, what: 'the entries sent again' });
    expect(sent[1]).toEqual([5, 6]);
    const gap = lines.map((l) => JSON.parse(l) as { code?: string; from?: number; to?: number }).find((l) => l.code === ErrorCode.SyncJournalGap);
    expect(gap).toMatchObject({ from: 3, to: 4 });
  });

  it('an unsigned or forged journal ack is refused (sync.bad-signature) and acknowledges nothing', async () => {
    const broker = new MemoryBroker();
    const { store, client } = device(broker);
    for (let i = 0; i < 50; i++) store.appendEvent({ wallTime: T0.getTime() + i, token: token(i), kind: 'turnstile', reason: 'not-passed' });
    const connected = nextEvent(client, 'connected');
    client.start();
    await connected;
    const codes: string[] = [];
    client.on('refused', (r: { code: string }) => codes.push(r.code));
    const two = new Promise<void>((r) => client.on('refused', () => codes.length === 2 && r()));
    broker.publish(topics.journalAck('bus-mem'), Buffer.from(JSON.stringify({ device: 'bus-mem', upTo: 50 })), true);
    broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-mem', 50, T0, generateSigningKey().privateKey), true);
    await two;
    expect(codes).toEqual([ErrorCode.SyncBadSignature, ErrorCode.SyncBadSignature]);
    expect(store.ackedSeq()).toBe(0);
    expect(store.journalBacklog()).toBe(50);
  });

  it('a signed ack beyond the last entry written is refused (store.journal-ack-invalid) and acknowledges nothing', async () => {
    const broker = new MemoryBroker();
    const { store, client, key } = device(broker);
    for (let i = 0; i < 5; i++) store.appendEvent({ wallTime: T0.getTime() + i, token: token(i), kind: 'turnstile', reason: 'not-passed' });
    const connected = nextEvent(client, 'connected');
    client.start();
    await connected;
    const refused = nextEvent<{ code: string }>(client, 'refused');
    broker.publish(topics.journalAck('bus-mem'), sealJournalAck('bus-mem', 6, T0, key), true);
    expect((await refused).code).toBe(ErrorCode.JournalAckInvalid);
    expect(store.ackedSeq()).toBe(0);
    expect(store.journalBacklog()).toBe(5);
  });

  it('an older signed config after a newer one was applied is refused (sync.list-rollback) and not applied, also after a restart', async () => {
    const broker = new MemoryBroker();
    const applied: [string, number][] = [];
    const d = device(broker, { onConfig: (name, version) => applied.push([name, version]) });
    const connected = nextEvent(d.client, 'connected');
    d.client.start();
    await connected;
    const v5 = nextEvent(d.client, 'config');
    broker.publish(topics.config('rules-bus'), sealConfig('rules-bus', 5, { v: 5 }, T0, DAY, d.key), true);
    await v5;
    const refused = nextEvent<{ code: string }>(d.client, 'refused');
    broker.publish(topics.config('rules-bus'), sealConfig('rules-bus', 4, { v: 4 }, T0, DAY, d.key), true);
    expect((await refused).code).toBe(ErrorCode.SyncRollback);
    expect(applied).toEqual([['rules-bus', 5]]);

    // a client started again on the same data remembers version 5; another document name is independent
    await d.client.stop();
    const again = new SyncClient({ ...d.client['o'], onConfig: (name, version) => applied.push([name, version]) });
    cleanup.push(() => again.stop());
    const refusedAgain = nextEvent<{ code: string }>(again, 'refused');
    const other = nextEvent(again, 'config');
    again.start();
    expect((await refusedAgain).code).toBe(ErrorCode.SyncRollback); // the retained v4
    broker.publish(topics.config('rules-school'), sealConfig('rules-school', 1, {}, T0, DAY, d.key), true);
    await other;
    expect(applied).toEqual([
      ['rules-bus', 5],
      ['rules-school', 1],
    ]);
  });
});
