import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { TokenKey } from '../../protocol/token.js';
import type { Config } from '../config/schema.js';
import { readMirCard } from '../emv/read.js';
import { isDisplay, isTurnstile, type DisplayMessage, type PassOutcome, type Peripheral, type PeripheralHealth } from '../io/types.js';
import type { CardChannel, CardRead, ReaderEvent, ReaderSource } from '../reader/types.js';
import type { Decision, Direction, Tap } from '../rules/types.js';
import { decideUnreadable } from '../rules/messages.js';
import type { JournalEntry, Store } from '../store/index.js';
import { systemClock, type Clock } from './clock.js';
import { processTap } from './process-tap.js';

/**
 * The tap loop: reader events → (per reader, one tap at a time) read the Mir
 * card → token → store view → decide → durable journal commit → ONLY THEN the
 * peripherals (display text, light and beep; gate open by reader direction) →
 * the gate's outcome ('passed' / 'not-passed') journaled as a follow-up event.
 *
 * Nothing a card, a peripheral or the network does ends this loop: a card that
 * cannot be read becomes a journaled deny whose reason is the error code; a
 * peripheral that fails is reported in its health and logged; the sync client
 * reconnects on its own while decisions go on.
 */

export type { Clock };

/** The journal's token for a tap whose card gave no token (unreadable, or not Mir). */
export const NO_TOKEN = '0'.repeat(32);

export interface RuntimePeripheral {
  peripheral: Peripheral;
  /** The reader (name or prefix) this peripheral answers for; all readers when absent. */
  reader?: string;
}

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
  tokenKey: TokenKey;
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

/** Default retention of acknowledged journal entries on the device. */
export const JOURNAL_RETENTION_MS = 30 * 86_400_000;

/** absent: named in the config but never seen (check the cable / the name). */
export type ReaderState = 'idle' | 'reading' | 'removed' | 'absent';

export interface ReaderStatus {
  name: string;
  direction: Direction | null;
  state: ReaderState;
  cardPresent: boolean;
  taps: number;
  lastError: { code: string; at: string } | null;
}

/** One tap as the runtime reports it (status, demo, logs). Never holds a PAN. */
export interface TapReport {
  reader: string;
  direction: Direction | null;
  seq: number;
  time: string; // ISO-8601, the tap's wall time
  tokenPrefix: string | null; // first 8 hex digits of the token
  maskedPan: string | null;
  scheme: string | null;
  result: 'allow' | 'deny';
  reason: string;
  fareKopecks: number;
  benefit: string | null;
  display: { ru: string; en: string };
  /** Set when the card could not be read (the reason is then this code). */
  error: string | null;
  /** Card present → card read (token derived), ms. */
  readMs: number;
  /** Card present → journal committed, ms. */
  commitMs: number;
  /** Card present → every peripheral command sent, ms. */
  signalMs: number;
  /** Gate commands sent for this tap. */
  gate: 'open-entry' | 'open-exit' | null;
}

export interface OutcomeReport {
  reader: string;
  seq: number; // the follow-up event's seq
  tapSeq: number;
  outcome: PassOutcome;
  direction: Direction;
}

export interface RuntimeStatus {
  device: { id: string; kind: string; route?: string; vehicle?: string; schoolId?: string };
  pid: number;
  startedAt: string;
  uptimeSec: number;
  state: 'running' | 'stopping';
  pcsc: 'up' | 'down' | 'unknown';
  readers: ReaderStatus[];
  peripherals: { name: string; kind: string; protocol: string; port: string; reader: string | null; health: PeripheralHealth; state?: string }[];
  lastTap: TapReport | null;
  taps: number;
  lists: { scope: string; version: number; appliedAt: string | null; ageSec: number | null }[];
  journal: { lastSeq: number; ackedSeq: number; backlog: number };
  sync: { configured: boolean; connected: boolean; since: string | null; lastAppliedAt: string | null; refused: number };
}

/** A reader's reported status plus the chain that keeps its taps one at a time. */
interface ReaderSlot extends ReaderStatus {
  chain: Promise<void>;
}

const DEVICE_FAULT = { ru: 'Ошибка устройства. Обратитесь к персоналу', en: 'Device error. Ask the staff' };

function matchesReader(pattern: string, reader: string): boolean {
  return reader === pattern || reader.startsWith(pattern);
}

export class Runtime extends EventEmitter {
  private cfg: Config;
  private readonly store: Store;
  private readonly source: ReaderSource;
  private readonly periph: RuntimePeripheral[];
  private readonly tokenKey: TokenKey;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly sync: RuntimeSync | null;
  private readonly readTimeoutMs: number;
  private readonly closeStore: boolean;
  private readonly closeSource: boolean;
  private readonly housekeepingMs: number;
  private readonly retentionMs: number;
  private housekeepingTimer: NodeJS.Timeout | null = null;
  private lastTapAt = 0;
  private lastPruneAt = 0;
  private readonly slots = new Map<string, ReaderSlot>();
  private readonly pending = new Set<Promise<void>>();
  private readonly unsubs: (() => void)[] = [];
  private pcsc: 'up' | 'down' | 'unknown' = 'unknown';
  private lastTap_: TapReport | null = null;
  private taps = 0;
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private readonly startedAt = new Date();
  private syncState = { connected: false, since: null as string | null, lastAppliedAt: null as string | null, refused: 0 };
  private stopPromise: Promise<void> | null = null;

  constructor(o: RuntimeOptions) {
    super();
    this.cfg = o.config;
    this.store = o.store;
    this.source = o.source;
    this.periph = o.peripherals ?? [];
    this.tokenKey = o.tokenKey;
    this.log = o.log.child({ component: 'runtime' });
    this.clock = o.clock ?? systemClock;
    this.sync = o.sync ?? null;
    this.readTimeoutMs = o.readTimeoutMs ?? 1000;
    this.closeStore = o.closeStore ?? true;
    this.closeSource = o.closeSource ?? true;
    this.housekeepingMs = o.housekeepingMs ?? 5000;
    this.retentionMs = o.journalRetentionMs ?? JOURNAL_RETENTION_MS;
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
    for (const { peripheral: p } of this.periph) {
      this.unsubs.push(
        p.onHealth((h) => {
          const fields = { peripheral: p.name, status: h.status, portOpen: h.portOpen, code: h.lastError?.code };
          if (h.status === 'ok') this.log.info(fields, 'peripheral healthy again');
          else this.log.warn(fields, `peripheral ${h.status}; taps are still decided and journaled`);
        }),
      );
      try {
        await p.start();
      } catch (e) {
        this.log.error({ peripheral: p.name, err: String(e) }, 'peripheral failed to start; continuing without it');
      }
    }
    if (this.cfg.device.kind === 'turnstile' && this.cfg.school?.freePassage) {
      for (const t of this.turnstiles(null)) await t.freePassage(true).catch(() => false);
      this.log.warn({}, 'free-passage mode: the gate stays open for everyone; taps are still journaled');
    }
    if (this.sync) {
      const s = this.sync;
      s.on('connected', () => {
        this.syncState.connected = true;
        this.syncState.since = new Date().toISOString();
        this.log.info({}, 'sync connected');
      });
      s.on('offline', () => {
        if (this.syncState.connected && this.state === 'running') this.log.warn({ code: ErrorCode.SyncBrokerUnavailable }, 'sync offline; decisions continue, the journal waits');
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
    if (this.housekeepingMs > 0) {
      this.housekeepingTimer = setInterval(() => this.housekeeping(), this.housekeepingMs);
      this.housekeepingTimer.unref();
    }
    this.unsubs.push(this.source.on((e) => this.onReaderEvent(e)));
    this.source.start();
    for (const r of this.source.readers()) this.addReader(r.name);
    this.log.info({ device: this.cfg.device.id, kind: this.cfg.device.kind, readers: [...this.slots.keys()], peripherals: this.periph.map((p) => p.peripheral.name) }, 'device running');
  }

  /** The reader names this runtime serves (config names or every one). */
  private readerConfig(name: string): { use: boolean; direction: Direction | null } {
    const list = this.cfg.readers;
    if (!list || list.length === 0) return { use: true, direction: null };
    const rc = list.find((r) => matchesReader(r.name, name));
    return rc ? { use: true, direction: rc.direction ?? null } : { use: false, direction: null };
  }

  private addReader(name: string): ReaderSlot | null {
    const existing = this.slots.get(name);
    if (existing) {
      if (existing.state === 'removed') {
        existing.state = 'idle';
        this.log.info({ reader: name }, 'reader back');
      }
      return existing;
    }
    const rc = this.readerConfig(name);
    if (!rc.use) {
      this.log.info({ reader: name }, 'reader ignored: not named in the config');
      return null;
    }
    const slot: ReaderSlot = { name, direction: rc.direction, state: 'idle', cardPresent: false, taps: 0, lastError: null, chain: Promise.resolve() };
    this.slots.set(name, slot);
    this.log.info({ reader: name, direction: rc.direction }, 'reader in use');
    return slot;
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
        this.addReader(e.reader);
        return;
      case 'reader-removed': {
        const s = this.slots.get(e.reader);
        if (s) {
          s.state = 'removed';
          s.cardPresent = false;
          this.log.warn({ reader: e.reader }, 'reader removed');
        }
        return;
      }
      case 'card-removed': {
        const s = this.slots.get(e.reader);
        if (s) s.cardPresent = false;
        return;
      }
      case 'card-inserted': {
        const s = this.slots.get(e.reader) ?? this.addReader(e.reader);
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

  /**
   * Between taps only: SQLite's WAL checkpoint (so it never lands on a tap),
   * and once an hour the acknowledged journal past retention and old counters.
   */
  housekeeping(now = Date.now()): void {
    if (this.state !== 'running') return;
    if ([...this.slots.values()].some((s) => s.state === 'reading') || performance.now() - this.lastTapAt < 1000) return;
    try {
      this.store.maintenance();
      if (now - this.lastPruneAt >= 3_600_000) {
        this.lastPruneAt = now;
        const pruned = this.store.pruneAcked(now - this.retentionMs);
        // counters of the previous month and later stay (quotas are per month, caps per day)
        const d = new Date(now);
        const prev = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
        const counters = this.store.pruneCounters(prev);
        if (pruned || counters) this.log.info({ journalPruned: pruned, countersPruned: counters }, 'housekeeping: pruned acknowledged journal and old counters');
      }
    } catch (e) {
      this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'housekeeping failed; will retry');
    }
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private turnstiles(reader: string | null) {
    return this.periph.filter((x) => isTurnstile(x.peripheral) && (reader === null || x.reader === undefined || matchesReader(x.reader, reader))).map((x) => x.peripheral as import('../io/types.js').Turnstile);
  }

  private displays(reader: string) {
    return this.periph.filter((x) => isDisplay(x.peripheral) && (x.reader === undefined || matchesReader(x.reader, reader))).map((x) => x.peripheral as import('../io/types.js').Display);
  }

  /** One tap, start to end. Never throws. */
  private async tap(slot: ReaderSlot, channel: CardChannel, t0: number): Promise<void> {
    if (this.state !== 'running' && this.state !== 'stopping') return;
    slot.state = 'reading';
    try {
      await this.tapInner(slot, channel, t0);
    } catch (e) {
      // last resort: the loop goes on whatever happened
      this.log.error({ reader: slot.name, code: ErrorCode.RuntimeTapFailed, err: e instanceof Error ? e.message : String(e) }, 'tap failed');
    } finally {
      if (slot.state === 'reading') slot.state = 'idle';
    }
  }

  private async tapInner(slot: ReaderSlot, channel: CardChannel, t0: number): Promise<void> {
    const cfg = this.cfg;
    const wall = this.clock.wallMs();
    const mono = this.clock.monoMs();
    let read: CardRead | null = null;
    let readErr: RcError | null = null;
    try {
      read = await readMirCard(channel, { now: new Date(wall), tokenKey: this.tokenKey, timeoutMs: this.readTimeoutMs });
    } catch (e) {
      readErr = isRcError(e) ? e : new RcError(ErrorCode.CardBadResponse, 'card read failed unexpectedly', { err: e instanceof Error ? e.name : 'unknown' });
    }
    const readMs = performance.now() - t0;
    const tap: Tap = {
      wallTime: wall,
      monotonicMs: mono,
      bootId: this.clock.bootId,
      direction: slot.direction,
      reader: slot.name,
      card: { token: read ? read.token : NO_TOKEN, expiry: read ? read.expiry : null },
    };
    let decision: Decision;
    let entry: JournalEntry;
    try {
      if (read) {
        ({ decision, entry } = processTap(this.store, tap, cfg));
      } else {
        const err = readErr!;
        decision = decideUnreadable(cfg.device.kind, err.code, wall);
        entry = this.store.commitTap(tap, decision, { listVersions: this.store.listVersions() });
        slot.lastError = { code: err.code, at: new Date(wall).toISOString() };
        const scheme = err.context && typeof err.context.scheme === 'string' ? err.context.scheme : undefined;
        this.log.info({ reader: slot.name, code: err.code, scheme, seq: entry.seq }, 'card not accepted; deny journaled');
      }
    } catch (e) {
      // the journal could not be written: the passenger must not pass on an unrecorded decision
      const code = isRcError(e) ? e.code : ErrorCode.RuntimeJournalFailed;
      slot.lastError = { code: ErrorCode.RuntimeJournalFailed, at: new Date().toISOString() };
      this.log.error({ reader: slot.name, code: ErrorCode.RuntimeJournalFailed, cause: code, err: e instanceof Error ? e.message : String(e) }, 'journal commit failed: tap refused');
      await this.show(slot.name, { text: `${DEVICE_FAULT.ru}\n${DEVICE_FAULT.en}`, light: 'red', beep: 'error' });
      return;
    }
    const commitMs = performance.now() - t0;
    try {
      this.sync?.notify();
    } catch {
      // the sync client uploads on its own timer too
    }

    // ---- only now: the passenger's signal ------------------------------------
    const sig = await this.signal(slot, decision, entry);
    const signalMs = performance.now() - t0;
    const report: TapReport = {
      reader: slot.name,
      direction: slot.direction,
      seq: entry.seq,
      time: entry.time,
      tokenPrefix: read ? read.token.slice(0, 8) : null,
      maskedPan: read ? read.maskedPan : null,
      scheme: read ? read.scheme : readErr?.context && typeof readErr.context.scheme === 'string' ? readErr.context.scheme : null,
      result: decision.result,
      reason: decision.reason,
      fareKopecks: decision.fareKopecks,
      benefit: decision.benefit,
      display: decision.display,
      error: readErr ? readErr.code : null,
      readMs: Math.round(readMs * 1000) / 1000,
      commitMs: Math.round(commitMs * 1000) / 1000,
      signalMs: Math.round(signalMs * 1000) / 1000,
      gate: sig.gate,
    };
    this.lastTap_ = report;
    this.lastTapAt = performance.now();
    slot.taps++;
    this.taps++;
    if (read) {
      this.log.info(
        { reader: slot.name, seq: entry.seq, maskedPan: read.maskedPan, token: report.tokenPrefix, result: decision.result, reason: decision.reason, fareKopecks: decision.fareKopecks, benefit: decision.benefit, ms: report.signalMs },
        'tap decided',
      );
    }
    this.emit('tap', report);
  }

  private async show(reader: string, msg: DisplayMessage): Promise<void> {
    await Promise.all(
      this.displays(reader).map((d) =>
        d.show(msg).catch((e: unknown) => {
          this.log.warn({ peripheral: d.name, err: String(e) }, 'display command failed');
          return false;
        }),
      ),
    );
  }

  private async signal(slot: ReaderSlot, decision: Decision, entry: JournalEntry): Promise<{ gate: TapReport['gate'] }> {
    const allow = decision.result === 'allow';
    const msg: DisplayMessage = {
      text: `${decision.display.ru}\n${decision.display.en}`,
      light: allow ? 'green' : 'red',
      beep: allow ? 'short' : 'error',
    };
    let gate: TapReport['gate'] = null;
    const freePassage = this.cfg.device.kind === 'turnstile' && this.cfg.school?.freePassage === true;
    if (allow && this.cfg.device.kind === 'turnstile' && !freePassage) {
      const direction: Direction = decision.direction ?? slot.direction ?? 'entry';
      gate = direction === 'exit' ? 'open-exit' : 'open-entry';
      for (const t of this.turnstiles(slot.name)) {
        if (t.state === 'free-passage') continue;
        const opened = direction === 'exit' ? t.openForExit() : t.openForEntry();
        const follow = opened
          .catch((): PassOutcome => 'not-passed')
          .then((outcome) => this.journalOutcome(slot, entry, direction, outcome));
        this.track(follow);
      }
    }
    await this.show(slot.name, msg);
    return { gate };
  }

  private journalOutcome(slot: ReaderSlot, entry: JournalEntry, direction: Direction, outcome: PassOutcome): void {
    try {
      const ev = this.store.appendEvent({ wallTime: this.clock.wallMs(), token: entry.token, kind: entry.kind, reason: outcome, direction, reader: slot.name, flags: [`tap:${entry.seq}`] });
      this.log.info({ reader: slot.name, tapSeq: entry.seq, seq: ev.seq, outcome }, outcome === 'passed' ? 'person passed' : 'gate opened, nobody passed');
      const r: OutcomeReport = { reader: slot.name, seq: ev.seq, tapSeq: entry.seq, outcome, direction };
      this.emit('outcome', r);
      this.sync?.notify();
    } catch (e) {
      this.log.warn({ reader: slot.name, tapSeq: entry.seq, outcome, err: e instanceof Error ? e.message : String(e) }, 'gate outcome not journaled');
    }
  }

  get lastTap(): TapReport | null {
    return this.lastTap_;
  }

  /** Resolves when every tap and gate outcome in progress is done. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  status(): RuntimeStatus {
    const now = Date.now();
    const d = this.cfg.device;
    let lists: RuntimeStatus['lists'] = [];
    let journal = { lastSeq: 0, ackedSeq: 0, backlog: 0 };
    try {
      const rows = this.store.db.prepare('SELECT scope, version, applied_ms FROM scopes ORDER BY scope').all() as { scope: string; version: number; applied_ms: number }[];
      lists = rows.map((r) => ({ scope: r.scope, version: r.version, appliedAt: new Date(r.applied_ms).toISOString(), ageSec: Math.max(0, Math.round((now - r.applied_ms) / 1000)) }));
      journal = { lastSeq: this.store.lastSeq(), ackedSeq: this.store.ackedSeq(), backlog: this.store.journalBacklog() };
    } catch {
      // store closed (stopping): report what we have
    }
    const srcReaders = new Map(safeReaders(this.source).map((r) => [r.name, r.cardPresent]));
    return {
      device: {
        id: d.id,
        kind: d.kind,
        ...(d.route !== undefined ? { route: d.route } : {}),
        ...(d.vehicle !== undefined ? { vehicle: d.vehicle } : {}),
        ...(d.schoolId !== undefined ? { schoolId: d.schoolId } : {}),
      },
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSec: Math.round((now - this.startedAt.getTime()) / 1000),
      state: this.state === 'running' ? 'running' : 'stopping',
      pcsc: this.pcsc,
      readers: [
        ...[...this.slots.values()].map((s) => ({
          name: s.name,
          direction: s.direction,
          state: s.state,
          cardPresent: srcReaders.get(s.name) ?? s.cardPresent,
          taps: s.taps,
          lastError: s.lastError,
        })),
        ...(this.cfg.readers ?? [])
          .filter((rc) => ![...this.slots.keys()].some((n) => matchesReader(rc.name, n)))
          .map((rc) => ({ name: rc.name, direction: rc.direction ?? null, state: 'absent' as const, cardPresent: false, taps: 0, lastError: null })),
      ],
      peripherals: this.periph.map(({ peripheral: p, reader }) => ({
        name: p.name,
        kind: p.kind,
        protocol: p.protocol,
        port: p.port,
        reader: reader ?? null,
        health: p.health(),
        ...(isTurnstile(p) ? { state: p.state } : {}),
      })),
      lastTap: this.lastTap_,
      taps: this.taps,
      lists,
      journal,
      sync: { configured: this.sync !== null, connected: this.sync?.connected ?? false, since: this.syncState.since, lastAppliedAt: this.syncState.lastAppliedAt, refused: this.syncState.refused },
    };
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
    if (this.state === 'idle') this.state = 'stopped';
    this.state = 'stopping';
    this.log.info({ inProgress: this.pending.size }, 'stopping: finishing the tap in progress');
    for (const u of this.unsubs.splice(0)) u();
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    // taps already started finish (their card channels are still open)
    await Promise.allSettled([...this.slots.values()].map((s) => s.chain));
    for (const { peripheral: p } of this.periph) {
      await p.stop().catch((e: unknown) => this.log.warn({ peripheral: p.name, err: String(e) }, 'peripheral stop failed'));
    }
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
