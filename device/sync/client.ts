import { EventEmitter } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { ListDelta, Scope } from '../../protocol/lists.js';
import { decodeRecords } from '../../protocol/wire/codec.js';
import { withTimeout } from '../../protocol/wire/timeout.js';
import { DEVICE_BUILT_IN_TABLE, type CategoryTable } from '../../protocol/categories.js';
import { loadPublicKey } from '../../protocol/wire/envelope.js';
import { MAX_CONTROL_MESSAGE, MAX_LIST_MESSAGE, type ManifestHeader, type WireJournalEntry } from '../../protocol/wire/messages.js';
import { parseTopic, topics } from '../../protocol/wire/topics.js';
import { verifyChunk, verifyConfig, verifyDelta, verifyJournalAck, verifyManifest } from '../../protocol/wire/verify.js';
import { openUsage } from '../../protocol/wire/usage-codec.js';
import type { JournalEntry, Store } from '../store/index.js';
import { createMqttTransport } from './mqtt-transport.js';
import { missingChunks, planScope, type ScopePlan, type ScopeView } from './planner.js';
import { ChunkStaging } from './staging.js';
import type { SyncTransport, SyncTransportFactory } from './transport.js';

/** What the sync client needs from the device store. */
export type SyncStore = Pick<
  Store,
  'listVersion' | 'listVersions' | 'applyDelta' | 'beginSnapshot' | 'journalRange' | 'ackUpTo' | 'rewindAck' | 'ackedSeq' | 'lastSeq' | 'journalBacklog'
>;

export interface SyncClientOptions {
  store: SyncStore;
  deviceId: string;
  brokerUrl: string;
  /** Other nodes of the broker cluster, tried in turn after `brokerUrl` when a connection is lost or fails (issue 16). */
  failoverUrls?: readonly string[];
  scopes: Scope[];
  serverPublicKey: string; // PEM or base64 raw
  username?: string;
  password?: string;
  stagingDir: string;
  log: Logger;
  now?: () => Date;
  batchSize?: number; // journal entries per batch (default 500)
  windowSize?: number; // entries sent ahead of the ack (default 5000)
  ackTimeoutMs?: number; // resend when no ack comes (default 10 s)
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  statusIntervalMs?: number;
  /** Ask the server to republish when no manifest came this long after connecting. */
  requestAfterMs?: number;
  readerState?: () => string;
  onConfig?: (name: string, version: number, doc: unknown) => void;
  /** mqtts: the CA pinned at enrolment and the broker's certificate name (device config sync.ca / sync.servername). */
  tls?: { ca: string; servername?: string };
  /** How messages travel (default: MQTT to `brokerUrl`). */
  transport?: SyncTransportFactory;
  /** The benefit categories of the rules the device holds, to read list records by (default: the built-in ones). */
  categories?: () => CategoryTable;
  /** Fleet usage (issue 10 item 4, buses): subscribe to rc/v1/usage/{snapshot,delta} and apply it to this store. */
  usageStore?: Pick<Store, 'applyUsage'>;
}

/** Entries written per store call while applying a snapshot (a tap waits at most this long). */
const APPLY_SLICE = 4096;

interface Download {
  manifest: ManifestHeader;
  have: Set<number>;
  applying: boolean;
}

interface ScopeState {
  manifest: ManifestHeader | null;
  deltas: Map<number, ListDelta>; // verified, keyed by fromVersion
  download: Download | null;
  waitTimer: NodeJS.Timeout | null;
  deltasOverdue: boolean; // the awaited deltas did not come in time: the planner picks the snapshot
}

/** How long the deltas a manifest lists are awaited before the snapshot is fetched instead. */
const DELTA_WAIT_MS = 5000;

/**
 * The device's sync client, over a `SyncTransport` (MQTT 3.1.1 unless another
 * is given; `planner.ts` decides what to fetch). Keeps lists current (delta or chunked
 * snapshot, verified, applied through the store in one transaction), uploads
 * the journal (QoS 1, kept until acknowledged), publishes a retained status
 * with a last will, reconnects with backoff. It never holds the store for
 * long: a snapshot is written chunk by chunk between event-loop turns, so taps
 * keep being decided.
 *
 * Events: 'applied' {scope, version, via}, 'refused' {code, topic, message},
 * 'acked' {upTo}, 'rewound' {upTo, from} (the server lost acknowledged entries; they go up again), 'connected', 'offline', 'config' {name, version},
 * 'progress' {scope, version, have, total} (snapshot chunks), 'applying' {scope, version},
 * 'frozen' {scopes} (the newest manifest seen has expired: no fresh list for too long).
 */
export class SyncClient extends EventEmitter {
  private client: SyncTransport | null = null;
  private readonly key: KeyObject;
  private readonly staging: ChunkStaging;
  private readonly state = new Map<Scope, ScopeState>();
  private readonly configHeld: Map<string, number>; // highest config version applied, by name (an older one is a rollback)
  private readonly now: () => Date;
  private readonly categories: () => CategoryTable;
  private sentUpTo = 0;
  private lastAckAt: number;
  private backoff: number;
  /** Connections in a row whose subscriptions failed (a clustered broker electing a new leader refuses them for a while). */
  private subscribeFailures = 0;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private timers: NodeJS.Timeout[] = [];
  private pumping = false;
  /** When the publish in flight was sent: one that never settles (a broker node in trouble) must not stop uploads. */
  private pumpingSince = 0;
  private pumpSeq = 0;
  /** The last ack (or connection, or idle moment): unlike lastAckAt, a resend does not move it. */
  private ackSeenAt: number;
  private statusDirty = false;
  /** A lower ack than the device's, not believed yet (onAck): the latest lower one, and when it is believed. */
  private doubt: { upTo: number; timer: NodeJS.Timeout } | null = null;
  private readonly log: Logger;

  constructor(private readonly o: SyncClientOptions) {
    super();
    this.key = loadPublicKey(o.serverPublicKey);
    this.staging = new ChunkStaging(o.stagingDir);
    this.configHeld = this.staging.configVersions();
    this.now = o.now ?? (() => new Date());
    this.categories = o.categories ?? (() => DEVICE_BUILT_IN_TABLE);
    this.lastAckAt = this.now().getTime();
    this.ackSeenAt = this.lastAckAt;
    this.backoff = o.reconnectMinMs ?? 500;
    this.log = o.log.child({ component: 'sync', device: o.deviceId });
    for (const s of o.scopes) this.state.set(s, { manifest: null, deltas: new Map(), download: null, waitTimer: null, deltasOverdue: false });
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** The broker node this device is (or was last) connected through. */
  get brokerUrl(): string {
    return this.client?.url ?? this.o.brokerUrl;
  }

  start(): void {
    const o = this.o;
    const will = { topic: topics.status(o.deviceId), payload: Buffer.from(JSON.stringify(this.statusPayload(false))) };
    const params = {
      brokerUrl: o.brokerUrl,
      ...(o.failoverUrls?.length ? { failoverUrls: o.failoverUrls } : {}),
      clientId: o.deviceId,
      will,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.tls ? { tls: o.tls } : {}),
    };
    this.client = (o.transport ?? createMqttTransport)(params, {
      connect: () => this.onConnect(),
      message: (topic, payload, retained) => this.onMessage(topic, payload, retained),
      close: () => this.onClose(),
      error: (e) => this.log.warn({ code: isRcError(e) ? e.code : ErrorCode.SyncBrokerUnavailable, err: e.message }, 'broker connection error'),
    });
    this.timers.push(setInterval(() => this.pump(), 1000));
    this.timers.push(
      setInterval(() => {
        this.publishStatus();
        this.checkFrozen();
      }, o.statusIntervalMs ?? 30_000),
    );
    for (const t of this.timers) t.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    for (const s of this.state.values()) if (s.waitTimer) clearTimeout(s.waitTimer);
    const c = this.client;
    this.clearDoubt();
    if (c?.connected) {
      await c.publish(topics.status(this.o.deviceId), Buffer.from(JSON.stringify(this.statusPayload(false))), true).catch(() => undefined);
    }
    await c?.close().catch(() => undefined);
  }

  /** Call after a tap was journaled: uploads soon, without waiting for the timer. */
  notify(): void {
    setImmediate(() => this.pump());
  }

  private onClose(): void {
    this.emit('offline');
    if (this.stopped) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.o.reconnectMaxMs ?? 30_000, this.backoff * 2);
    if (this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped && this.client && !this.client.connected) this.client.reconnect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private onConnect(): void {
    const c = this.client!;
    const min = this.o.reconnectMinMs ?? 500;
    this.backoff = Math.min(this.o.reconnectMaxMs ?? 30_000, min * 2 ** this.subscribeFailures);
    this.sentUpTo = this.o.store.ackedSeq(); // resend what is not acknowledged (the server dedups)
    this.pumping = false; // a publish of the previous connection may never settle
    this.pumpSeq++;
    this.lastAckAt = this.now().getTime();
    this.ackSeenAt = this.lastAckAt;
    this.log.info({ broker: c.url ?? this.o.brokerUrl }, 'connected');
    const subs: string[] = [topics.journalAck(this.o.deviceId), topics.configAll()];
    for (const s of this.o.scopes) subs.push(topics.manifest(s), topics.deltaAll(s));
    if (this.o.usageStore) subs.push(topics.usageSnapshot(), topics.usageDelta());
    const attempt = (n: number): void =>
      void withTimeout(c.subscribe(subs), this.o.ackTimeoutMs ?? 10_000, 'no SUBACK')
        .then(() => {
          this.subscribeFailures = 0;
          // resume interrupted downloads
          for (const [scope, st] of this.state) if (st.download) void this.subscribeMissing(scope, st.download);
          this.publishStatus();
          this.clearDoubt(); // a probe of an earlier connection may never have been answered: this one probes again
          this.probeAck();
          this.pump();
          this.emit('connected');
        })
        .catch((e) => {
          if (c !== this.client || !c.connected || this.stopped) return this.log.warn({ err: String(e) }, 'subscribe failed');
          // without its subscriptions a device gets no acks and no lists, however long the connection lasts. A clustered
          // broker refuses some while it elects new leaders after losing a node: try again on this connection (subscribing
          // again to a topic held is harmless), then drop it and connect again (the next node, with a failover list)
          const min = this.o.reconnectMinMs ?? 500;
          if (n < 4) {
            this.log.warn({ err: String(e), code: ErrorCode.SyncBrokerUnavailable, attempt: n + 1 }, 'subscribe failed: trying again');
            const t = setTimeout(() => c === this.client && c.connected && !this.stopped && attempt(n + 1), min * 2 ** n);
            t.unref();
            return;
          }
          this.subscribeFailures++;
          this.log.warn({ err: String(e), code: ErrorCode.SyncBrokerUnavailable }, 'subscribe failed: connecting again');
          c.drop?.();
        });
    attempt(0);
    const after = this.o.requestAfterMs ?? 3000;
    const t = setTimeout(() => {
      const missing = this.o.scopes.filter((s) => !this.state.get(s)!.manifest);
      if (missing.length && c.connected) {
        const body = Buffer.from(JSON.stringify({ device: this.o.deviceId, scopes: missing }));
        void c.publish(topics.request(this.o.deviceId), body, false).catch(() => undefined);
      }
    }, after);
    t.unref();
  }

  /** Fleet usage: verified, then applied in one transaction; a delta that does not follow the version held waits for the next snapshot. */
  private onUsage(topic: string, payload: Buffer): void {
    if (payload.length === 0) return;
    try {
      const { header, records } = openUsage(payload, this.key, this.now());
      if (this.o.usageStore!.applyUsage({ fromVersion: header.from, toVersion: header.to, records })) this.emit('usage', { version: header.to });
    } catch (e) {
      if (isRcError(e) && e.code === ErrorCode.ListVersionGap) return this.log.debug({ topic }, 'usage delta skipped: waiting for the next snapshot');
      this.refuse(e, topic);
    }
  }

  private refuse(e: unknown, topic: string): void {
    if (isRcError(e)) {
      this.log.warn({ code: e.code, topic, err: e.message, context: e.context }, 'message refused; lists unchanged');
      this.emit('refused', { code: e.code, topic, message: e.message });
    } else {
      this.log.error({ topic, err: String(e) }, 'message handling failed; lists unchanged');
      this.emit('refused', { code: ErrorCode.SyncHandlerFailed, topic, message: String(e) });
    }
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    if (this.stopped) return;
    if (this.o.usageStore && (topic === topics.usageSnapshot() || topic === topics.usageDelta())) return this.onUsage(topic, payload);
    const t = parseTopic(topic);
    if (!t) return;
    if (payload.length === 0) return; // a cleared retained topic
    try {
      if (t.kind === 'journal-ack') return this.onAck(payload);
      if (t.kind === 'config') {
        const { header, doc } = verifyConfig(payload, this.key, this.now());
        if (header.name !== t.name) throw new RcError(ErrorCode.SyncWrongScope, 'config document name does not match its topic', { topic: t.name });
        const held = this.configHeld.get(header.name) ?? 0;
        if (header.version < held) {
          throw new RcError(ErrorCode.SyncRollback, 'config document is older than the one applied', { name: header.name, held, offered: header.version });
        }
        if (header.version > held) {
          this.configHeld.set(header.name, header.version);
          this.staging.saveConfigVersions(this.configHeld);
        }
        this.emit('config', { name: header.name, version: header.version });
        this.o.onConfig?.(header.name, header.version, doc);
        return;
      }
      if (t.kind !== 'manifest' && t.kind !== 'delta' && t.kind !== 'chunk') return;
      const st = this.state.get(t.scope);
      if (!st) throw new RcError(ErrorCode.SyncWrongScope, 'message for a scope this device does not hold', { scope: t.scope });
      const held = this.o.store.listVersion(t.scope);
      const ctx = { key: this.key, scope: t.scope, held, now: this.now(), categories: this.categories() };
      if (t.kind === 'manifest') {
        const m = verifyManifest(payload, ctx);
        if (!st.manifest || m.version >= st.manifest.version) st.manifest = m;
        this.plan(t.scope);
      } else if (t.kind === 'delta') {
        if (t.to <= held && retained) return; // an older retained delta: already applied
        const { header, delta } = verifyDelta(payload, ctx);
        if (header.from !== t.from || header.to !== t.to) throw new RcError(ErrorCode.SyncPayloadInvalid, 'delta versions do not match its topic');
        st.deltas.set(delta.fromVersion, delta);
        if (st.deltas.size > 1000) st.deltas.delete(st.deltas.keys().next().value!);
        this.plan(t.scope);
      } else {
        const d = st.download;
        if (!d || d.manifest.version !== t.version || d.have.has(t.n)) return;
        if (payload.length > MAX_LIST_MESSAGE) throw new RcError(ErrorCode.SyncPayloadTooLarge, 'chunk too large', { bytes: payload.length });
        verifyChunk(payload, d.manifest, t.n);
        this.staging.put(t.scope, t.version, t.n, payload);
        d.have.add(t.n);
        this.emit('progress', { scope: t.scope, version: t.version, have: d.have.size, total: d.manifest.chunks.length });
        this.client?.unsubscribe([topics.chunk(t.scope, t.version, t.n)]);
        if (d.have.size === d.manifest.chunks.length) void this.applySnapshot(t.scope, d);
      }
    } catch (e) {
      this.refuse(e, topic);
    }
  }

  /** Bring a scope to its manifest's version: the planner decides (buffered deltas first, else await deltas, else a snapshot). */
  private plan(scope: Scope): void {
    const st = this.state.get(scope)!;
    const store = this.o.store;
    const overdue = st.deltasOverdue;
    st.deltasOverdue = false;
    let p = planScope(this.view(scope, overdue), this.now());
    if (p.apply.length) {
      for (const step of p.apply) {
        if (store.listVersion(scope) !== step.from) break;
        const d = st.deltas.get(step.from)!;
        st.deltas.delete(step.from);
        try {
          const r = store.applyDelta(d);
          if (r.applied) {
            this.log.info({ scope, from: r.fromVersion, version: r.version, changes: r.entries }, 'delta applied');
            this.emit('applied', { scope, version: r.version, via: 'delta' });
            this.statusDirty = true;
          }
        } catch (e) {
          this.refuse(e, topics.delta(scope, d.fromVersion, d.toVersion));
          break;
        }
      }
      // a delta was refused: decide again from what is held
      if (store.listVersion(scope) !== p.reaches) p = planScope(this.view(scope, overdue), this.now());
    }
    for (const k of p.discard) st.deltas.delete(k);
    if (this.statusDirty) this.publishStatus();
    this.act(scope, p);
  }

  private view(scope: Scope, deltasOverdue: boolean): ScopeView {
    const st = this.state.get(scope)!;
    const d = st.download;
    return {
      scope,
      held: this.o.store.listVersion(scope),
      manifest: st.manifest,
      buffered: [...st.deltas.values()].map((x) => ({ from: x.fromVersion, to: x.toVersion })),
      download: d ? { version: d.manifest.version, applying: d.applying } : null,
      deltasOverdue,
    };
  }

  private act(scope: Scope, p: ScopePlan): void {
    const st = this.state.get(scope)!;
    const next = p.next;
    if (next.kind === 'idle') {
      if (next.reason === 'no-manifest' || next.reason === 'up-to-date' || next.reason === 'rollback') {
        if (st.waitTimer) clearTimeout(st.waitTimer);
        st.waitTimer = null;
      }
      return;
    }
    if (next.kind === 'await-deltas') {
      // the deltas are retained and on their way; fall back to a snapshot if they do not come
      if (!st.waitTimer) {
        st.waitTimer = setTimeout(() => {
          st.waitTimer = null;
          st.deltasOverdue = true;
          this.plan(scope);
        }, DELTA_WAIT_MS);
        st.waitTimer.unref();
      }
      return;
    }
    this.startDownload(scope, st.manifest!);
  }

  private startDownload(scope: Scope, m: ManifestHeader): void {
    const st = this.state.get(scope)!;
    if (st.download) this.unsubscribeChunks(scope, st.download);
    this.staging.dropOthers(scope, m.version);
    const have = new Set<number>();
    for (const n of this.staging.have(scope, m.version)) {
      try {
        verifyChunk(this.staging.get(scope, m.version, n), m, n);
        have.add(n);
      } catch {
        /* a torn file: fetch again */
      }
    }
    const d: Download = { manifest: m, have, applying: false };
    st.download = d;
    this.log.info({ scope, version: m.version, chunks: m.chunks.length, resumed: have.size }, 'snapshot download');
    if (have.size === m.chunks.length) void this.applySnapshot(scope, d);
    else void this.subscribeMissing(scope, d);
  }

  private async subscribeMissing(scope: Scope, d: Download): Promise<void> {
    const c = this.client;
    if (!c?.connected) return;
    const missing = missingChunks(d.manifest, d.have).map((n) => topics.chunk(scope, d.manifest.version, n));
    for (let i = 0; i < missing.length; i += 100) await c.subscribe(missing.slice(i, i + 100)).catch(() => undefined);
  }

  private unsubscribeChunks(scope: Scope, d: Download): void {
    const missing = missingChunks(d.manifest, d.have).map((n) => topics.chunk(scope, d.manifest.version, n));
    if (missing.length && this.client?.connected) this.client.unsubscribe(missing);
  }

  /** Write the staged chunks through the store's snapshot writer, one chunk per event-loop turn; swap in at once. */
  private async applySnapshot(scope: Scope, d: Download): Promise<void> {
    if (d.applying) return;
    d.applying = true;
    const st = this.state.get(scope)!;
    const v = d.manifest.version;
    this.emit('applying', { scope, version: v });
    const writer = this.o.store.beginSnapshot(scope, v);
    try {
      for (const ref of d.manifest.chunks) {
        const records = verifyChunk(this.staging.get(scope, v, ref.n), d.manifest, ref.n);
        const entries = decodeRecords(scope, records, false, this.categories()).entries;
        // small slices, each its own short write, so a tap waits at most one slice
        for (let i = 0; i < entries.length; i += APPLY_SLICE) {
          writer.add(entries.slice(i, i + APPLY_SLICE));
          await yieldLoop();
        }
      }
      const r = writer.commit();
      this.log.info({ scope, version: v, entries: r.entries }, 'snapshot applied');
      this.staging.drop(scope, v);
      if (r.applied) this.emit('applied', { scope, version: v, via: 'snapshot' });
      this.statusDirty = true;
    } catch (e) {
      writer.abort();
      this.staging.drop(scope, v);
      this.refuse(e, topics.chunk(scope, v, 0));
    } finally {
      if (st.download === d) st.download = null;
      this.plan(scope);
    }
  }

  /** Warn (sync.list-frozen) when the newest manifest seen has expired: no fresh list for too long. The device keeps deciding. */
  checkFrozen(): Scope[] {
    const now = this.now().getTime();
    const frozen: Scope[] = [];
    for (const [scope, st] of this.state) {
      if (st.manifest && Date.parse(st.manifest.expiresAt) <= now) frozen.push(scope);
    }
    if (frozen.length) {
      this.log.warn({ code: ErrorCode.SyncListFrozen, scopes: frozen }, 'lists are older than policy allows; still deciding on them');
      this.emit('frozen', { scopes: frozen });
    }
    return frozen;
  }

  // ---- journal ----

  /**
   * A signed ack from the server (an unsigned or forged one, one for another device or beyond the journal is
   * refused and changes nothing). Below the device's own ack, the server has lost entries it acknowledged
   * (a registry restored from an older copy): the ack moves back and they are sent again. But several server instances
   * (docs/postgres.md "Several instances") each publish an ack after their own commit, and an older, lower one may
   * arrive last, even two of them. So a lower ack is doubted first: the device sends its last acknowledged entry again
   * (the instance that gets it answers with what the registry holds), and an ack as high as the device's within
   * ackTimeoutMs clears the doubt; otherwise the latest lower ack is believed.
   */
  private onAck(payload: Buffer): void {
    if (payload.length > MAX_CONTROL_MESSAGE) throw new RcError(ErrorCode.SyncPayloadTooLarge, 'journal ack too large', { bytes: payload.length });
    const store = this.o.store;
    const { upTo } = verifyJournalAck(payload, this.key, this.o.deviceId, store.lastSeq());
    const acked = store.ackedSeq();
    if (upTo >= acked) this.clearDoubt();
    if (upTo > acked) {
      store.ackUpTo(upTo);
      this.lastAckAt = this.now().getTime();
      this.ackSeenAt = this.lastAckAt;
      this.statusDirty = true;
      this.emit('acked', { upTo });
    } else if (upTo < acked) {
      if (this.doubt) this.doubt.upTo = upTo;
      else {
        this.log.debug({ serverAck: upTo, deviceAck: acked }, 'server acknowledges less than before: asking again');
        const timer = setTimeout(() => this.believeLowerAck(), this.o.ackTimeoutMs ?? 10_000);
        timer.unref();
        this.doubt = { upTo, timer };
        this.probeAck();
      }
    }
    if (this.sentUpTo < upTo) this.sentUpTo = upTo;
    this.pump();
  }

  private clearDoubt(): void {
    if (this.doubt) clearTimeout(this.doubt.timer);
    this.doubt = null;
  }

  /** No ack as high as the device's came after the probe: the server has lost entries; they go up again. */
  private believeLowerAck(): void {
    const d = this.doubt;
    this.doubt = null;
    const store = this.o.store;
    const acked = store.ackedSeq();
    if (!d || this.stopped || d.upTo >= acked) return;
    const upTo = d.upTo;
    store.rewindAck(upTo);
    const first = store.journalRange(upTo + 1, 1)[0]?.seq ?? store.lastSeq() + 1;
    if (first > upTo + 1) {
      // pruned (acknowledged and past 30 days): those entries cannot be sent again
      const gap = { code: ErrorCode.SyncJournalGap, from: upTo + 1, to: first - 1, entries: first - upTo - 1 };
      this.log.warn(gap, 'server lost journal entries the device already pruned; they cannot be sent again');
    }
    this.log.warn({ serverAck: upTo, deviceAck: acked }, 'server acknowledges less than before (registry restored?); sending those entries again');
    this.sentUpTo = upTo;
    this.lastAckAt = this.now().getTime();
    this.ackSeenAt = this.lastAckAt;
    this.statusDirty = true;
    this.emit('rewound', { upTo, from: acked });
    this.pump();
  }

  /**
   * After (re)connecting, send the last acknowledged entry once more: the server stores it once (it dedups) and
   * answers with its ack, so a server that lost acknowledged entries says so even if no new tap comes.
   */
  private probeAck(): void {
    const store = this.o.store;
    const acked = store.ackedSeq();
    const e = acked > 0 ? store.journalRange(acked, 1)[0] : undefined;
    const c = this.client;
    if (!e || e.seq !== acked || !c?.connected) return;
    const body = Buffer.from(JSON.stringify({ device: this.o.deviceId, entries: [toWire(e)] }));
    void c.publish(topics.journal(this.o.deviceId), body, false).catch(() => undefined);
  }

  private pump(): void {
    const c = this.client;
    if (this.stopped || !c?.connected) return;
    const store = this.o.store;
    const acked = store.ackedSeq();
    const now = this.now().getTime();
    const ackTimeout = this.o.ackTimeoutMs ?? 10_000;
    if (this.pumping) {
      // a publish that never settles (no PUBACK from a node that lost its cluster) would hold uploads forever
      if (now - this.pumpingSince <= ackTimeout) return;
      this.pumping = false;
      this.pumpSeq++;
    }
    if (this.sentUpTo > acked && now - this.ackSeenAt > 3 * ackTimeout) {
      // sent, resent, and still no ack on this connection: the node or the path through it is broken while the
      // socket stays up (seen on a NATS cluster electing leaders). Connect again, to the next node with a failover list
      this.log.warn({ code: ErrorCode.SyncBrokerUnavailable, acked, sent: this.sentUpTo }, 'no acknowledgement for too long: connecting again');
      this.ackSeenAt = now;
      this.sentUpTo = acked;
      c.drop?.();
      return;
    }
    if (this.sentUpTo > acked && now - this.lastAckAt > ackTimeout) {
      this.sentUpTo = acked; // no ack for too long: send again
      this.lastAckAt = now;
    }
    if (this.sentUpTo < acked) this.sentUpTo = acked;
    if (this.sentUpTo === acked) this.ackSeenAt = now; // nothing outstanding: no ack is owed
    const batch = this.o.batchSize ?? 500;
    const window = this.o.windowSize ?? 5000;
    if (this.sentUpTo >= store.lastSeq() || this.sentUpTo - acked >= window) {
      if (this.statusDirty) this.publishStatus();
      return;
    }
    const entries = store.journalRange(this.sentUpTo + 1, batch);
    if (entries.length === 0) return;
    if (this.sentUpTo === acked) this.lastAckAt = now;
    const last = entries[entries.length - 1]!.seq;
    this.sentUpTo = last;
    this.pumping = true;
    this.pumpingSince = now;
    const mine = ++this.pumpSeq;
    const body = Buffer.from(JSON.stringify({ device: this.o.deviceId, entries: entries.map(toWire) }));
    c.publish(topics.journal(this.o.deviceId), body, false)
      .catch(() => {
        this.sentUpTo = Math.min(this.sentUpTo, this.o.store.ackedSeq());
      })
      .finally(() => {
        if (mine !== this.pumpSeq) return; // given up on (see pump): a later publish is in flight
        this.pumping = false;
        setImmediate(() => this.pump());
      });
  }

  // ---- status ----

  private statusPayload(online: boolean): unknown {
    const store = this.o.store;
    const lists: Record<string, number> = {};
    for (const s of this.o.scopes) lists[s] = store.listVersion(s);
    return {
      device: this.o.deviceId,
      online,
      at: this.now().toISOString(),
      lists,
      backlog: store.journalBacklog(),
      ...(this.o.readerState ? { reader: this.o.readerState() } : {}),
    };
  }

  private publishStatus(): void {
    const c = this.client;
    if (this.stopped || !c?.connected) return;
    this.statusDirty = false;
    void c.publish(topics.status(this.o.deviceId), Buffer.from(JSON.stringify(this.statusPayload(true))), true).catch(() => undefined);
  }
}

function toWire(e: JournalEntry): WireJournalEntry {
  const data: Record<string, unknown> = { effectiveTime: e.effectiveTime };
  if (e.direction) data.direction = e.direction;
  if (e.reader) data.reader = e.reader;
  if (e.route !== undefined) data.route = e.route;
  if (e.vehicle !== undefined) data.vehicle = e.vehicle;
  if (e.meal !== undefined) data.meal = e.meal;
  if (e.keyVersion !== undefined) data.keyVersion = e.keyVersion;
  if (e.flags.length) data.flags = e.flags;
  return {
    seq: e.seq,
    time: e.time,
    token: e.token,
    kind: e.kind,
    result: e.result,
    reason: e.reason,
    fareKopecks: e.fareKopecks,
    benefit: e.benefit,
    lists: e.listVersions,
    data,
  };
}
