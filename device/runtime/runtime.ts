import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ErrorCode } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';
import type { TokenKey } from '../../protocol/token.js';
import type { Config } from '../config/schema.js';
import type { CardChannel, ReaderEvent, ReaderSource } from '../reader/types.js';
import type { Store } from '../store/index.js';
import { systemClock, type Clock } from './clock.js';
import type { OutcomeReport, RuntimeEvents } from './events.js';
import { Housekeeping, JOURNAL_RETENTION_MS } from './housekeeping.js';
import { PeripheralRouter, type RuntimePeripheral } from './peripherals.js';
import { ReaderSlots, type ReaderSlot } from './readers.js';
import type { RuntimeStatus, TapReport } from './status.js';
import { buildStatus } from './status-report.js';
import { TapPipeline } from './tap-pipeline.js';

/**
 * The device's runtime: reader events → (per reader, one tap at a time) the tap
 * pipeline (tap-pipeline.ts: read → decide → commit → signal) → a typed 'tap'
 * event. Around it: the readers in use (readers.ts), which peripheral answers
 * for which reader (peripherals.ts), idle housekeeping (housekeeping.ts), the
 * status (status-report.ts, shape in status.ts) and the sync client's state.
 *
 * Nothing a card, a peripheral or the network does ends this loop: a card that
 * cannot be read becomes a journaled deny whose reason is the error code; a
 * peripheral that fails is reported in its health and logged; the sync client
 * reconnects on its own while decisions go on.
 */

export interface RuntimeSync {
  readonly connected: boolean;
  start(): void;
  stop(): Promise<void>;
  notify(): void;
  on(event: 'connected' | 'offline' | 'applied' | 'refused' | 'acked', listener: (arg?: unknown) => void): unknown;
}

export interface RuntimeOptions {
  config: Config;
  store: Store;
  source: ReaderSource;
  peripherals?: RuntimePeripheral[];
  tokenKey: TokenKey | TokenDeriver;
  log: Logger;
  clock?: Clock;
  sync?: RuntimeSync | null;
  /** Per-APDU timeout of the card read (default 1000 ms). */
  readTimeoutMs?: number;
  /** Close the store in stop() (default true). */
  closeStore?: boolean;
  /**
   * Close the reader source in stop(), last (default true). `rc-device run` says
   * false: releasing a PC/SC card whose transmit is stuck in pcscd blocks the
   * event loop (the binding's disconnect is synchronous), and process exit
   * releases the PC/SC context anyway.
   */
  closeSource?: boolean;
  /** How often idle housekeeping runs (WAL checkpoint off the tap path, pruning): default 5000 ms; 0 disables. */
  housekeepingMs?: number;
  /** Acknowledged journal entries older than this are deleted (default 30 days). */
  journalRetentionMs?: number;
}

export class Runtime extends EventEmitter<RuntimeEvents> {
  private cfg: Config;
  private readonly store: Store;
  private readonly source: ReaderSource;
  private readonly router: PeripheralRouter;
  private readonly log: Logger;
  private readonly sync: RuntimeSync | null;
  private readonly closeStore: boolean;
  private readonly closeSource: boolean;
  private readonly housekeepingMs: number;
  private readonly readers: ReaderSlots;
  private readonly pipeline: TapPipeline;
  private readonly keeper: Housekeeping;
  private housekeepingTimer: NodeJS.Timeout | null = null;
  private readonly pending = new Set<Promise<void>>();
  private readonly unsubs: (() => void)[] = [];
  private pcsc: RuntimeStatus['pcsc'] = 'unknown';
  private lastTap_: TapReport | null = null;
  private taps = 0;
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private readonly startedAt = new Date();
  private syncState = { since: null as string | null, lastAppliedAt: null as string | null, refused: 0, connected: false };
  private stopPromise: Promise<void> | null = null;

  constructor(o: RuntimeOptions) {
    super();
    this.cfg = o.config;
    this.store = o.store;
    this.source = o.source;
    this.log = o.log.child({ component: 'runtime' });
    this.router = new PeripheralRouter(o.peripherals ?? [], this.log);
    const clock = o.clock ?? systemClock;
    this.sync = o.sync ?? null;
    this.closeStore = o.closeStore ?? true;
    this.closeSource = o.closeSource ?? true;
    this.housekeepingMs = o.housekeepingMs ?? 5000;
    this.readers = new ReaderSlots(() => this.cfg, this.log);
    this.keeper = new Housekeeping({
      store: this.store,
      log: this.log,
      clock,
      retentionMs: o.journalRetentionMs ?? JOURNAL_RETENTION_MS,
      busy: () => this.readers.busy(),
    });
    this.pipeline = new TapPipeline({
      store: this.store,
      router: this.router,
      tokenKey: o.tokenKey,
      log: this.log,
      clock,
      readTimeoutMs: o.readTimeoutMs ?? 1000,
      config: () => this.cfg,
      notify: () => this.sync?.notify(),
      track: (p) => this.track(p),
      outcome: (r) => this.emit('outcome', r),
    });
  }

  get config(): Config {
    return this.cfg;
  }

  /** Replace the rules (e.g. a tariff published by the server); taps in progress keep the old ones. */
  setConfig(cfg: Config): void {
    this.cfg = cfg;
  }

  /** Start the peripherals, the sync client and the reader source. Never throws for a missing device. */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.unsubs.push(...(await this.router.start()));
    if (this.cfg.device.kind === 'turnstile' && this.cfg.school?.freePassage) {
      for (const t of this.router.turnstiles(null)) await t.freePassage(true).catch(() => false);
      this.log.warn({}, 'free-passage mode: the gate stays open for everyone; taps are still journaled');
    }
    if (this.sync) this.startSync(this.sync);
    if (this.housekeepingMs > 0) {
      this.housekeepingTimer = setInterval(() => this.housekeeping(), this.housekeepingMs);
      this.housekeepingTimer.unref();
    }
    this.unsubs.push(this.source.on((e) => this.onReaderEvent(e)));
    this.source.start();
    for (const r of this.source.readers()) this.readers.add(r.name);
    const running = { device: this.cfg.device.id, kind: this.cfg.device.kind, readers: this.readers.names(), peripherals: this.router.names() };
    this.log.info(running, 'device running');
  }

  private startSync(s: RuntimeSync): void {
    s.on('connected', () => {
      this.syncState.connected = true;
      this.syncState.since = new Date().toISOString();
      this.log.info({}, 'sync connected');
    });
    s.on('offline', () => {
      if (this.syncState.connected && this.state === 'running') {
        this.log.warn({ code: ErrorCode.SyncBrokerUnavailable }, 'sync offline; decisions continue, the journal waits');
      }
      this.syncState.connected = false;
      this.syncState.since = new Date().toISOString();
    });
    s.on('applied', () => {
      this.syncState.lastAppliedAt = new Date().toISOString();
    });
    s.on('refused', () => {
      this.syncState.refused++;
    });
    try {
      s.start();
    } catch (e) {
      this.log.error({ err: String(e) }, 'sync client failed to start; decisions continue offline');
    }
  }

  private onReaderEvent(e: ReaderEvent): void {
    if (this.state !== 'running') return;
    switch (e.type) {
      case 'service-down':
        if (this.pcsc !== 'down') this.log.warn({ code: ErrorCode.PcscUnavailable, err: e.error }, 'card reader service down; retrying');
        this.pcsc = 'down';
        return;
      case 'service-up':
        if (this.pcsc === 'down') this.log.info({}, 'card reader service back');
        this.pcsc = 'up';
        return;
      case 'reader-added':
        this.readers.add(e.reader);
        return;
      case 'reader-removed':
        this.readers.removed(e.reader);
        return;
      case 'card-removed': {
        const s = this.readers.get(e.reader);
        if (s) s.cardPresent = false;
        return;
      }
      case 'card-inserted': {
        const s = this.readers.get(e.reader) ?? this.readers.add(e.reader);
        if (!s) return;
        s.cardPresent = true;
        const t0 = performance.now();
        const run = s.chain.then(() => this.tap(s, e.channel, t0));
        s.chain = run;
        this.track(run);
        return;
      }
    }
  }

  /** One tap through the pipeline, then the 'tap' event. Never throws. */
  private async tap(slot: ReaderSlot, channel: CardChannel, t0: number): Promise<void> {
    if (this.state !== 'running' && this.state !== 'stopping') return;
    const report = await this.pipeline.run(slot, channel, t0);
    if (!report) return;
    this.lastTap_ = report;
    this.keeper.tapEnded();
    this.taps++;
    this.emit('tap', report);
  }

  /**
   * Between taps only (on the injected clock): SQLite's WAL checkpoint, and once
   * an hour the acknowledged journal past retention and old counters.
   */
  housekeeping(now?: number): void {
    if (this.state !== 'running') return;
    this.keeper.run(now);
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** The next tap decided (on that reader, when given). Subscribe before the card is presented. */
  nextTap(reader?: string): Promise<TapReport> {
    return new Promise((resolve) => {
      const on = (r: TapReport) => {
        if (reader !== undefined && r.reader !== reader) return;
        this.off('tap', on);
        resolve(r);
      };
      this.on('tap', on);
    });
  }

  /** The gate outcome journaled for the tap with that seq. Subscribe before the gate can report it. */
  nextOutcome(tapSeq: number): Promise<OutcomeReport> {
    return new Promise((resolve) => {
      const on = (r: OutcomeReport) => {
        if (r.tapSeq !== tapSeq) return;
        this.off('outcome', on);
        resolve(r);
      };
      this.on('outcome', on);
    });
  }

  get lastTap(): TapReport | null {
    return this.lastTap_;
  }

  /** Resolves when every tap and gate outcome in progress is done. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  status(): RuntimeStatus {
    const cardPresent = new Map(safeReaders(this.source).map((r) => [r.name, r.cardPresent]));
    return buildStatus({
      config: this.cfg,
      startedAt: this.startedAt,
      state: this.state === 'running' ? 'running' : 'stopping',
      pcsc: this.pcsc,
      readers: this.readers.statuses(cardPresent),
      peripherals: this.router.statuses(),
      lastTap: this.lastTap_,
      taps: this.taps,
      sync: {
        configured: this.sync !== null,
        connected: this.sync?.connected ?? false,
        since: this.syncState.since,
        lastAppliedAt: this.syncState.lastAppliedAt,
        refused: this.syncState.refused,
      },
      store: this.store,
      now: Date.now(),
    });
  }

  /**
   * Stop safely: no new taps; the tap in progress finishes (its journal entry
   * and its signal); the peripherals stop (a gate closes unless in free
   * passage); pending gate outcomes are journaled; sync stops; the store closes.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.state = 'stopping';
    this.log.info({ inProgress: this.pending.size }, 'stopping: finishing the tap in progress');
    for (const u of this.unsubs.splice(0)) u();
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    // taps already started finish (their card channels are still open)
    await Promise.allSettled(this.readers.all().map((s) => s.chain));
    await this.router.stop();
    await this.idle();
    if (this.sync) await this.sync.stop().catch((e: unknown) => this.log.warn({ err: String(e) }, 'sync stop failed'));
    if (this.closeStore) {
      try {
        this.store.close();
      } catch (e) {
        this.log.warn({ err: String(e) }, 'store close failed');
      }
    }
    // the reader source last: everything that matters is closed already
    if (this.closeSource) {
      await Promise.race([
        this.source.close().catch((e: unknown) => this.log.warn({ err: String(e) }, 'reader source close failed')),
        new Promise<void>((r) => setTimeout(r, 3000).unref()),
      ]);
    }
    this.state = 'stopped';
    this.log.info({ taps: this.taps }, 'stopped');
  }
}

function safeReaders(src: ReaderSource) {
  try {
    return src.readers();
  } catch {
    return [];
  }
}
