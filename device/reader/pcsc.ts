import type * as Smartcard from 'smartcard';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { rootLogger, type Logger } from '../../protocol/log.js';
import type { CardChannel, ReaderEvent, ReaderInfo, ReaderSource } from './types.js';

/**
 * ReaderSource over pcscd, through the `smartcard` binding (optional
 * dependency, loaded on demand).
 *
 * An async loop around SCardGetStatusChange (the binding's waitForChange runs
 * it on a worker thread, 1 s at a time) with the PnP pseudo-reader, so
 * readers appearing/disappearing and cards inserted/removed become
 * ReaderEvents.
 *
 * Contexts: libpcsclite holds a context's mutex for the whole of a blocking
 * call (SCardGetStatusChange waits up to 1 s, SCardTransmit as long as the
 * card takes). Sharing one context made every APDU wait for the monitor's
 * poll (~1 s per APDU) and could block the main thread in a synchronous
 * listReaders(). So: one context for the monitor (worker thread only), one
 * for listing readers (main thread only), and one per connected card. When pcscd is absent or goes away (any context error),
 * the context is dropped, 'service-down' is emitted once, and a new context is
 * tried with exponential backoff (capped, default 5 s): nothing spins, nothing
 * throws out of the loop. A new pcscd gets a fresh context, so the readers come
 * back (the binding's own Devices class stays dead after a pcscd restart).
 *
 * Note: the binding's new Context(), listReaders() and card.disconnect() are
 * synchronous. They only talk to pcscd, but a virtual card served on this
 * same event loop could not answer meanwhile: run virtual cards in another
 * process (test/support/rig/vcard-host.ts, `rc-device vcard`).
 */

type Binding = typeof Smartcard;
type PcscContext = Smartcard.ContextInterface;
type PcscCard = Smartcard.CardInterface;

const PNP = '\\\\?PnP?\\Notification';

/** Load the PC/SC binding; missing or unbuilt → RcError reader.binding-missing. */
export async function loadPcscBinding(): Promise<Binding> {
  try {
    // a computed specifier: the bundler (tsup) leaves the native binding external
    const specifier = process.env.RC_PCSC_BINDING ?? 'smartcard';
    const m = (await import(specifier)) as Binding & { default?: Binding };
    const b = m.default ?? m;
    if (typeof b.Context !== 'function') throw new Error('smartcard binding has no Context');
    return b;
  } catch (e) {
    throw new RcError(ErrorCode.ReaderBindingMissing, 'the PC/SC binding (smartcard) is not available', { reason: (e as Error).message });
  }
}

export interface PcscReaderSourceOptions {
  log?: Logger;
  /** First retry delay after pcscd was found missing. Default 250 ms. */
  backoffInitialMs?: number;
  /** Retry delay cap. Default 5000 ms. */
  backoffMaxMs?: number;
  /** How long one SCardGetStatusChange waits before the loop looks again. Default 1000 ms. */
  pollMs?: number;
}

interface KnownReader {
  state: number;
  inserted: boolean;
  card: PcscCard | null;
  cardCtx: PcscContext | null;
  channel: PcscChannel | null;
  emitted: boolean;
}

const sleep = (ms: number, wake: { fn: (() => void) | null }) =>
  new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    wake.fn = () => {
      clearTimeout(t);
      r();
    };
  });

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Map a binding error on a card operation to our codes. */
export function mapCardError(e: unknown, reader: string): RcError {
  if (e instanceof RcError) return e;
  const msg = errMessage(e);
  if (/removed|no smart card|reset|unpowered|unresponsive|not connected|invalid handle/i.test(msg)) {
    return new RcError(ErrorCode.CardRemoved, 'the card left the reader', { reader, reason: msg });
  }
  if (/service|communication error/i.test(msg)) {
    return new RcError(ErrorCode.PcscUnavailable, 'the PC/SC service went away during the exchange', { reader, reason: msg });
  }
  return new RcError(ErrorCode.ReaderTransmit, 'the reader could not exchange a command with the card', { reader, reason: msg });
}

/** A CardChannel over one connected PC/SC card. */
export class PcscChannel implements CardChannel {
  private gone: RcError | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private inFlight: Promise<unknown> = Promise.resolve();
  apdus = 0;

  constructor(
    private readonly card: PcscCard,
    readonly reader: string,
  ) {}

  /** The card left (or pcscd went away): every later transmit fails with this error. */
  invalidate(err: RcError): void {
    this.gone ??= err;
  }

  get alive(): boolean {
    return this.gone === null;
  }

  /** Resolves when no PC/SC transmit is pending on this card (including one we stopped waiting for). */
  idle(): Promise<void> {
    return this.inFlight.then(() => undefined);
  }

  transmit(apdu: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const run = () => this.transmitNow(apdu, timeoutMs);
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async transmitNow(apdu: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.gone) throw this.gone;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new RcError(ErrorCode.CardTimeout, 'the card did not answer in time', { reader: this.reader, timeoutMs });
        // the PC/SC call may still be pending in pcscd: this card is unusable now
        this.invalidate(err);
        reject(err);
      }, timeoutMs);
    });
    try {
      this.apdus++;
      const call = this.card.transmit(Buffer.from(apdu.buffer, apdu.byteOffset, apdu.length), { maxRecvLength: 4096 });
      this.inFlight = call.catch(() => undefined);
      const res = await Promise.race([call, timeout]);
      if (res.length === 0) {
        const err = new RcError(ErrorCode.CardRemoved, 'the card left the reader (empty response)', { reader: this.reader });
        this.invalidate(err);
        throw err;
      }
      if (res.length < 2) {
        throw new RcError(ErrorCode.CardBadResponse, 'response shorter than a status word', { reader: this.reader, length: res.length });
      }
      return new Uint8Array(res.buffer, res.byteOffset, res.length);
    } catch (e) {
      const err = mapCardError(e, this.reader);
      if (err.code === ErrorCode.CardRemoved || err.code === ErrorCode.PcscUnavailable) this.invalidate(err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}

export class PcscReaderSource implements ReaderSource {
  private readonly listeners = new Set<(e: ReaderEvent) => void>();
  private readonly known = new Map<string, KnownReader>();
  private readonly log: Logger;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly pollMs: number;
  private ctx: PcscContext | null = null; // monitor: waitForChange only
  private listCtx: PcscContext | null = null; // main thread: listReaders only
  private loop: Promise<void> | null = null;
  private closed = false;
  private serviceUp: boolean | null = null;
  private delay: number;
  private pnpState = 0;
  private readonly wake: { fn: (() => void) | null } = { fn: null };
  /** Number of (re)connection attempts that failed since the last success. */
  failedAttempts = 0;

  constructor(
    private readonly binding: Binding,
    opts: PcscReaderSourceOptions = {},
  ) {
    this.log = opts.log ?? rootLogger().child({ component: 'reader' });
    this.backoffInitialMs = opts.backoffInitialMs ?? 250;
    this.backoffMaxMs = opts.backoffMaxMs ?? 5000;
    this.pollMs = opts.pollMs ?? 1000;
    this.delay = this.backoffInitialMs;
  }

  /** Load the binding and build a source (not started). */
  static async create(opts: PcscReaderSourceOptions = {}): Promise<PcscReaderSource> {
    return new PcscReaderSource(await loadPcscBinding(), opts);
  }

  start(): void {
    if (this.loop || this.closed) return;
    this.loop = this.run();
  }

  on(listener: (e: ReaderEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readers(): ReaderInfo[] {
    return [...this.known.entries()].map(([name, k]) => ({ name, cardPresent: k.inserted }));
  }

  /** Whether pcscd answered last time we asked (null before the first attempt). */
  get available(): boolean | null {
    return this.serviceUp;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake.fn?.();
    if (this.ctx) {
      try {
        this.ctx.cancel();
      } catch {
        /* context already dead */
      }
    }
    await this.loop;
    this.dropAll(false);
    this.releaseContext();
  }

  private emit(e: ReaderEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err: errMessage(err), event: e.type }, 'a reader event listener threw; ignored');
      }
    }
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        await this.session();
      } catch (e) {
        if (this.closed) break;
        this.serviceLost(e);
      }
      if (this.closed) break;
      this.failedAttempts++;
      await sleep(this.delay, this.wake);
      this.wake.fn = null;
      this.delay = Math.min(this.delay * 2, this.backoffMaxMs);
    }
  }

  /** One PC/SC context's life: returns only when closed, throws when pcscd fails. */
  private async session(): Promise<void> {
    this.ctx = new this.binding.Context();
    this.listCtx = new this.binding.Context();
    this.pnpState = 0;
    this.syncReaders();
    if (this.serviceUp !== true) {
      if (this.serviceUp === false) this.log.info({ readers: this.known.size }, 'PC/SC service is back; watching readers again');
      else this.log.info({ readers: this.known.size }, 'PC/SC service up; watching readers');
      this.serviceUp = true;
      this.emit({ type: 'service-up' });
    }
    this.delay = this.backoffInitialMs;
    this.failedAttempts = 0;
    let quick = 0;
    while (!this.closed) {
      const ctx = this.ctx;
      const states = [...this.known.entries()].map(([name, k]) => ({ name, state: k.state, changed: false, atr: null }));
      states.push({ name: PNP, state: this.pnpState, changed: false, atr: null });
      const t0 = Date.now();
      const res = await ctx.waitForChange(states, this.pollMs);
      if (this.closed || res === null) return;
      if (res.length === 0) {
        // periodic look: readers may have changed without a PnP notice
        this.syncReaders();
        quick = 0;
        continue;
      }
      let readersChanged = false;
      for (const r of res) {
        if (!r.changed) continue;
        if (r.name === PNP) {
          this.pnpState = r.state & ~this.binding.SCARD_STATE_CHANGED;
          readersChanged = true;
        } else {
          this.onState(r.name, r.state);
        }
      }
      if (readersChanged) this.syncReaders();
      // never spin: a wait that keeps returning at once gets a pause
      if (Date.now() - t0 < 5) {
        if (++quick > 20) {
          quick = 0;
          await sleep(100, this.wake);
          this.wake.fn = null;
        }
      } else quick = 0;
    }
  }

  private syncReaders(): void {
    const ctx = this.listCtx;
    if (!ctx) return;
    const list = ctx.listReaders();
    const names = new Set(list.map((r) => r.name));
    for (const name of [...this.known.keys()]) {
      if (!names.has(name)) {
        this.cardGone(name, new RcError(ErrorCode.CardRemoved, 'the reader went away', { reader: name }));
        this.known.delete(name);
        this.log.info({ reader: name }, 'reader removed');
        this.emit({ type: 'reader-removed', reader: name });
      }
    }
    for (const r of list) {
      if (this.known.has(r.name)) continue;
      this.known.set(r.name, { state: 0, inserted: false, card: null, cardCtx: null, channel: null, emitted: false });
      this.log.info({ reader: r.name }, 'reader added');
      this.emit({ type: 'reader-added', reader: r.name });
      this.onState(r.name, r.state);
    }
  }

  private onState(name: string, rawState: number): void {
    const k = this.known.get(name);
    if (!k) return;
    const b = this.binding;
    const prev = k.state;
    const state = rawState & ~b.SCARD_STATE_CHANGED;
    k.state = state;
    const present = (state & b.SCARD_STATE_PRESENT) !== 0 && (state & b.SCARD_STATE_MUTE) === 0;
    const counterChanged = prev >>> 16 !== state >>> 16;
    if (k.inserted && (!present || counterChanged)) {
      this.cardGone(name, new RcError(ErrorCode.CardRemoved, 'the card left the reader', { reader: name }));
    }
    if (present && !k.inserted) {
      k.inserted = true;
      void this.connectCard(name, k);
    }
  }

  private async connectCard(name: string, k: KnownReader): Promise<void> {
    const b = this.binding;
    if (!this.ctx) return;
    let ctx: PcscContext | null = null;
    try {
      ctx = new b.Context();
      const reader = ctx.listReaders().find((r) => r.name === name);
      if (!reader) {
        safeClose(ctx);
        return;
      }
      let card: PcscCard;
      try {
        card = await reader.connect(b.SCARD_SHARE_SHARED, b.SCARD_PROTOCOL_T0 | b.SCARD_PROTOCOL_T1);
      } catch (e) {
        if (!/unresponsive/i.test(errMessage(e))) throw e;
        card = await reader.connect(b.SCARD_SHARE_SHARED, b.SCARD_PROTOCOL_T0);
      }
      if (!k.inserted || this.known.get(name) !== k || this.closed) {
        safeDisconnect(card, b.SCARD_LEAVE_CARD);
        safeClose(ctx);
        return;
      }
      const channel = new PcscChannel(card, name);
      k.card = card;
      k.cardCtx = ctx;
      k.channel = channel;
      k.emitted = true;
      const atr = card.atr ?? Buffer.alloc(0);
      this.log.debug({ reader: name }, 'card inserted');
      this.emit({ type: 'card-inserted', reader: name, atr: new Uint8Array(atr), channel });
    } catch (e) {
      if (ctx) safeClose(ctx);
      // removed before we could connect, or a card that does not talk: wait for the next change
      this.log.warn({ reader: name, reason: errMessage(e) }, 'could not connect to the card; waiting for the next card');
    }
  }

  private cardGone(name: string, err: RcError): void {
    const k = this.known.get(name);
    if (!k || !k.inserted) return;
    k.inserted = false;
    this.release(k, err, true);
    if (k.emitted) {
      k.emitted = false;
      this.log.debug({ reader: name }, 'card removed');
      this.emit({ type: 'card-removed', reader: name });
    }
  }

  private dropAll(serviceGone: boolean): void {
    for (const name of [...this.known.keys()]) {
      const err = serviceGone
        ? new RcError(ErrorCode.PcscUnavailable, 'the PC/SC service went away', { reader: name })
        : new RcError(ErrorCode.CardRemoved, 'the reader source was closed', { reader: name });
      const k = this.known.get(name)!;
      this.release(k, err, !serviceGone);
      if (k.inserted && k.emitted) this.emit({ type: 'card-removed', reader: name });
      k.inserted = false;
      this.known.delete(name);
      if (serviceGone) this.emit({ type: 'reader-removed', reader: name });
    }
  }

  /**
   * Let go of a reader's card: the channel fails from now on; the PC/SC
   * handle is disconnected once no transmit is pending on it (a disconnect
   * while a transmit waits would block this thread on libpcsclite's mutex).
   */
  private release(k: KnownReader, err: RcError, disconnect: boolean): void {
    const { card, cardCtx, channel } = k;
    k.card = null;
    k.cardCtx = null;
    k.channel = null;
    channel?.invalidate(err);
    const leave = this.binding.SCARD_LEAVE_CARD;
    const done = () => {
      if (card && disconnect) safeDisconnect(card, leave);
      if (cardCtx) safeClose(cardCtx);
    };
    if (channel) void channel.idle().then(done);
    else done();
  }

  private releaseContext(): void {
    if (this.ctx) safeClose(this.ctx);
    if (this.listCtx) safeClose(this.listCtx);
    this.ctx = null;
    this.listCtx = null;
  }

  private serviceLost(e: unknown): void {
    const reason = errMessage(e);
    this.dropAll(true);
    this.releaseContext();
    if (this.serviceUp !== false) {
      this.serviceUp = false;
      this.log.warn({ reason, retryMs: this.delay }, 'PC/SC service unavailable; retrying with backoff');
      this.emit({ type: 'service-down', error: reason });
    } else {
      this.log.debug({ reason, retryMs: this.delay }, 'PC/SC service still unavailable');
    }
  }
}

function safeClose(ctx: PcscContext): void {
  try {
    ctx.close();
  } catch {
    /* already dead */
  }
}

function safeDisconnect(card: PcscCard, disposition: number): void {
  try {
    card.disconnect(disposition);
  } catch {
    /* the card or pcscd is gone already */
  }
}
