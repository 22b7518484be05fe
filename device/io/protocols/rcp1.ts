/**
 * RCP/1 — the Resident Card peripheral protocol, version 1.
 * Specification: docs/serial-protocol.md. This file holds all of it:
 *   1. the frame codec (CRC-16/CCITT-FALSE, resynchronising parser),
 *   2. the command/event payloads, shared with the simulators in test/support/sim,
 *   3. the stop-and-wait session (ACK/NAK, retries, timeouts, event dedup),
 *   4. the turnstile and display drivers, and the ProtocolDefinition that
 *      device/io/factory.ts registers.
 * A vendor protocol is another file like this one, registered in the factory.
 */
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import type { Logger } from '../../../protocol/log.js';
import type { ProtocolDefinition } from '../protocol.js';
import { SerialPeripheral, type SerialPeripheralContext } from '../serial-peripheral.js';
import type { BeepPattern, Direction, Display, DisplayMessage, Light, PassOutcome, Turnstile, TurnstileEvent, TurnstileState } from '../types.js';

// ───────────────────────────── 1. frame codec ─────────────────────────────

export const STX = 0x02;
export const ETX = 0x03;
/** Largest payload; a LEN byte above it cannot start a frame. */
export const MAX_PAYLOAD = 240;
/** STX LEN SEQ CMD … CRC_HI CRC_LO ETX */
export const FRAME_OVERHEAD = 7;

export const Cmd = {
  // link layer
  ACK: 0x06,
  NAK: 0x15,
  // host → peripheral
  PING: 0x01,
  OPEN: 0x20,
  CLOSE: 0x21,
  FREE_PASSAGE: 0x22,
  SHOW: 0x30,
  CLEAR: 0x31,
  // peripheral → host (events)
  EVT_PASSED: 0x80,
  EVT_OPEN_TIMEOUT: 0x81,
  EVT_TAMPER: 0x82,
  EVT_BOOT: 0x83,
} as const;

/** A repeated event sequence number counts as a retransmission only within this window (see §4.3). */
export const EVENT_DEDUP_MS = 2000;

export const NakReason = {
  BUSY: 0x01,
  UNKNOWN_COMMAND: 0x02,
  BAD_PAYLOAD: 0x03,
  BAD_STATE: 0x04,
} as const;

/** A NAK with one of these reasons is worth sending again; the others fail at once. */
export function nakIsRetryable(reason: number): boolean {
  return reason === NakReason.BUSY;
}

export interface Frame {
  seq: number;
  cmd: number;
  payload: Uint8Array;
}

/** CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor ("123456789" → 0x29B1). */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) {
    crc ^= (bytes[i] ?? 0) << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

export function encodeFrame(f: Frame): Buffer {
  if (f.payload.length > MAX_PAYLOAD) {
    throw new RcError(ErrorCode.IoBadFrame, `rcp1 payload of ${f.payload.length} bytes exceeds ${MAX_PAYLOAD}`, { length: f.payload.length });
  }
  const len = f.payload.length;
  const out = Buffer.alloc(len + FRAME_OVERHEAD);
  out[0] = STX;
  out[1] = len;
  out[2] = f.seq & 0xff;
  out[3] = f.cmd & 0xff;
  out.set(f.payload, 4);
  out.writeUInt16BE(crc16(out, 1, 4 + len), 4 + len);
  out[len + 6] = ETX;
  return out;
}

/**
 * Incremental decoder. Feed it whatever the port delivers; it returns the
 * valid frames in order. Bytes before an STX, an impossible LEN, a wrong CRC
 * or a missing ETX make it drop one byte and look for the next STX, so a
 * frame that follows garbage is still found. Memory stays bounded by one
 * maximal frame. expire() is called when the line went quiet: what is left
 * can never complete and is dropped.
 */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);
  private resyncing = false;
  /** Resynchronisation episodes: runs of bytes that were not a valid frame. */
  badFrames = 0;
  discardedBytes = 0;

  get pending(): number {
    return this.buf.length;
  }

  push(chunk: Uint8Array): Frame[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    return this.drain();
  }

  expire(): Frame[] {
    const frames: Frame[] = [];
    while (this.buf.length > 0) {
      this.discard(1);
      frames.push(...this.drain());
    }
    return frames;
  }

  reset(): void {
    this.buf = Buffer.alloc(0);
    this.resyncing = false;
  }

  private discard(n: number): void {
    if (!this.resyncing) {
      this.resyncing = true;
      this.badFrames++;
    }
    this.discardedBytes += n;
    this.buf = this.buf.subarray(n);
  }

  private drain(): Frame[] {
    const frames: Frame[] = [];
    for (;;) {
      const at = this.buf.indexOf(STX);
      if (at < 0) {
        if (this.buf.length > 0) this.discard(this.buf.length);
        return frames;
      }
      if (at > 0) this.discard(at);
      if (this.buf.length < 2) return frames;
      const len = this.buf[1] ?? 0;
      if (len > MAX_PAYLOAD) {
        this.discard(1);
        continue;
      }
      const total = len + FRAME_OVERHEAD;
      if (this.buf.length < total) return frames;
      const crcOk = this.buf.readUInt16BE(4 + len) === crc16(this.buf, 1, 4 + len);
      if (!crcOk || this.buf[total - 1] !== ETX) {
        this.discard(1);
        continue;
      }
      frames.push({ seq: this.buf[2] ?? 0, cmd: this.buf[3] ?? 0, payload: Uint8Array.from(this.buf.subarray(4, 4 + len)) });
      this.buf = this.buf.subarray(total);
      this.resyncing = false;
    }
  }
}

// ───────────────────────── 2. commands and events ─────────────────────────

export type HostCommand =
  | { type: 'ping' }
  | { type: 'open'; direction: Direction; windowMs: number }
  | { type: 'close' }
  | { type: 'free-passage'; on: boolean }
  | { type: 'show'; light: Light; beep: BeepPattern; text: string }
  | { type: 'clear' };

export type PeripheralEvent =
  { type: 'passed'; direction: Direction } | { type: 'open-timeout'; direction: Direction } | { type: 'tamper'; detail: number } | { type: 'boot' };

const DIRECTIONS: Record<Direction, number> = { entry: 1, exit: 2 };
const LIGHTS: Record<Light, number> = { off: 0, green: 1, red: 2 };
const BEEPS: Record<BeepPattern, number> = { none: 0, short: 1, long: 2, double: 3, error: 4 };

function reverse<K extends string>(m: Record<K, number>): Map<number, K> {
  return new Map(Object.entries(m).map(([k, v]) => [v as number, k as K]));
}
const DIRECTION_OF = reverse(DIRECTIONS);
const LIGHT_OF = reverse(LIGHTS);
const BEEP_OF = reverse(BEEPS);

/** Longest text a SHOW carries: the payload minus the light and beep bytes. */
export const MAX_TEXT_BYTES = MAX_PAYLOAD - 2;

/** UTF-8 bytes of text, cut at a character boundary to fit maxBytes. */
export function utf8Fit(text: string, maxBytes: number): { bytes: Buffer; truncated: boolean } {
  const full = Buffer.from(text, 'utf8');
  if (full.length <= maxBytes) return { bytes: full, truncated: false };
  let end = maxBytes;
  // step back over continuation bytes (10xxxxxx) to the start of a character
  while (end > 0 && ((full[end] ?? 0) & 0xc0) === 0x80) end--;
  return { bytes: full.subarray(0, end), truncated: true };
}

export function encodeCommand(c: HostCommand): { cmd: number; payload: Uint8Array } {
  switch (c.type) {
    case 'ping':
      return { cmd: Cmd.PING, payload: new Uint8Array(0) };
    case 'open': {
      const p = Buffer.alloc(3);
      p[0] = DIRECTIONS[c.direction];
      p.writeUInt16BE(Math.min(0xffff, Math.max(0, Math.round(c.windowMs))), 1);
      return { cmd: Cmd.OPEN, payload: p };
    }
    case 'close':
      return { cmd: Cmd.CLOSE, payload: new Uint8Array(0) };
    case 'free-passage':
      return { cmd: Cmd.FREE_PASSAGE, payload: Uint8Array.of(c.on ? 1 : 0) };
    case 'show': {
      const { bytes } = utf8Fit(c.text, MAX_TEXT_BYTES);
      return { cmd: Cmd.SHOW, payload: Buffer.concat([Uint8Array.of(LIGHTS[c.light], BEEPS[c.beep]), bytes]) };
    }
    case 'clear':
      return { cmd: Cmd.CLEAR, payload: new Uint8Array(0) };
  }
}

/** The peripheral side's reading of a host frame; undefined for an unknown command or a malformed payload. */
export function decodeCommand(f: Frame): HostCommand | undefined {
  const p = f.payload;
  switch (f.cmd) {
    case Cmd.PING:
      return p.length === 0 ? { type: 'ping' } : undefined;
    case Cmd.OPEN: {
      const direction = DIRECTION_OF.get(p[0] ?? -1);
      if (p.length !== 3 || !direction) return undefined;
      return { type: 'open', direction, windowMs: ((p[1] ?? 0) << 8) | (p[2] ?? 0) };
    }
    case Cmd.CLOSE:
      return p.length === 0 ? { type: 'close' } : undefined;
    case Cmd.FREE_PASSAGE:
      return p.length === 1 && (p[0] === 0 || p[0] === 1) ? { type: 'free-passage', on: p[0] === 1 } : undefined;
    case Cmd.SHOW: {
      const light = LIGHT_OF.get(p[0] ?? -1);
      const beep = BEEP_OF.get(p[1] ?? -1);
      if (p.length < 2 || !light || !beep) return undefined;
      const text = new TextDecoder('utf-8', { fatal: true });
      try {
        return { type: 'show', light, beep, text: text.decode(p.subarray(2)) };
      } catch {
        return undefined;
      }
    }
    case Cmd.CLEAR:
      return p.length === 0 ? { type: 'clear' } : undefined;
    default:
      return undefined;
  }
}

export function isCommandFrame(f: Frame): boolean {
  return f.cmd !== Cmd.ACK && f.cmd !== Cmd.NAK && f.cmd < 0x80;
}

export function encodeEvent(e: PeripheralEvent): { cmd: number; payload: Uint8Array } {
  switch (e.type) {
    case 'passed':
      return { cmd: Cmd.EVT_PASSED, payload: Uint8Array.of(DIRECTIONS[e.direction]) };
    case 'open-timeout':
      return { cmd: Cmd.EVT_OPEN_TIMEOUT, payload: Uint8Array.of(DIRECTIONS[e.direction]) };
    case 'tamper':
      return { cmd: Cmd.EVT_TAMPER, payload: Uint8Array.of(e.detail & 0xff) };
    case 'boot':
      return { cmd: Cmd.EVT_BOOT, payload: new Uint8Array(0) };
  }
}

export function decodeEvent(f: Frame): PeripheralEvent | undefined {
  const p = f.payload;
  switch (f.cmd) {
    case Cmd.EVT_PASSED:
    case Cmd.EVT_OPEN_TIMEOUT: {
      const direction = DIRECTION_OF.get(p[0] ?? -1);
      if (p.length !== 1 || !direction) return undefined;
      return { type: f.cmd === Cmd.EVT_PASSED ? 'passed' : 'open-timeout', direction };
    }
    case Cmd.EVT_TAMPER:
      return p.length === 1 ? { type: 'tamper', detail: p[0] ?? 0 } : undefined;
    case Cmd.EVT_BOOT:
      return p.length === 0 ? { type: 'boot' } : undefined;
    default:
      return undefined;
  }
}

// ─────────────────────────────── 3. session ───────────────────────────────

type Reply = { kind: 'ack'; frame: Frame } | { kind: 'nak'; reason: number } | { kind: 'timeout' };

export type RequestResult = { ok: true; reply: Frame } | { ok: false; error: RcError };

/**
 * Host side of RCP/1 on one port, mixed into the drivers below: one command in
 * flight at a time (stop-and-wait), retries reuse the sequence number so the
 * peripheral can tell a repeat from a new command, events are acknowledged
 * and delivered once.
 */
abstract class Rcp1Peripheral extends SerialPeripheral {
  readonly protocol = 'rcp1';
  private readonly parser = new FrameParser();
  private idleTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting: { seq: number; settle(r: Reply): void } | undefined;
  private lastEvent = { seq: -1, at: 0 };

  protected onBytes(chunk: Buffer): void {
    this.touch();
    const before = this.parser.badFrames;
    const frames = this.parser.push(chunk);
    this.noteBad(before);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.parser.pending > 0) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        const b = this.parser.badFrames;
        const late = this.parser.expire();
        this.noteBad(b);
        for (const f of late) this.onFrame(f);
      }, this.timing.interByteTimeoutMs);
    }
    for (const f of frames) this.onFrame(f);
  }

  private noteBad(before: number): void {
    const n = this.parser.badFrames - before;
    if (n > 0) {
      this.tracker.counters.badFrames += n;
      this.log.debug(
        { port: this.port, badFrames: this.tracker.counters.badFrames, code: ErrorCode.IoBadFrame },
        'discarded bytes that were not a valid rcp1 frame',
      );
    }
  }

  protected override onPortOpen(): void {
    this.parser.reset();
    this.lastEvent = { seq: -1, at: 0 };
  }

  protected override onPortDown(): void {
    this.parser.reset();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.waiting?.settle({ kind: 'timeout' });
  }

  private onFrame(f: Frame): void {
    if (f.cmd === Cmd.ACK || f.cmd === Cmd.NAK) {
      const w = this.waiting;
      if (w && w.seq === f.seq) {
        w.settle(f.cmd === Cmd.ACK ? { kind: 'ack', frame: f } : { kind: 'nak', reason: f.payload[0] ?? 0 });
      } else {
        this.log.debug({ seq: f.seq, cmd: f.cmd }, 'stray rcp1 ACK/NAK ignored');
      }
      return;
    }
    if (f.cmd >= 0x80) {
      const ev = decodeEvent(f);
      if (!ev) {
        this.sendRaw({ seq: f.seq, cmd: Cmd.NAK, payload: Uint8Array.of(NakReason.BAD_PAYLOAD) });
        return;
      }
      this.sendRaw({ seq: f.seq, cmd: Cmd.ACK, payload: new Uint8Array(0) });
      const now = Date.now();
      const repeat = f.seq === this.lastEvent.seq && now - this.lastEvent.at < EVENT_DEDUP_MS;
      if (ev.type === 'boot') {
        if (repeat) return;
        // the peripheral (re)started: its sequence numbers start afresh from this one
        this.lastEvent = { seq: f.seq, at: now };
        this.log.info({ port: this.port }, `${this.name} reports it (re)started`);
        this.onPeripheralEvent(ev);
        return;
      }
      if (repeat) return; // our ACK was lost and the peripheral sent it again
      this.lastEvent = { seq: f.seq, at: now };
      this.onPeripheralEvent(ev);
      return;
    }
    // a peripheral does not send commands to the host
    this.sendRaw({ seq: f.seq, cmd: Cmd.NAK, payload: Uint8Array.of(NakReason.UNKNOWN_COMMAND) });
  }

  private sendRaw(f: Frame): void {
    this.link.write(encodeFrame(f)).catch((e: unknown) => this.log.debug({ err: e }, 'could not send rcp1 ACK/NAK'));
  }

  /** Sends a command and waits for its ACK, with retries. Never rejects; records the outcome in health. */
  protected request(c: HostCommand, what: string): Promise<RequestResult> {
    const run = this.queue.then(() => this.exchange(c, what));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async exchange(c: HostCommand, what: string): Promise<RequestResult> {
    this.touch();
    this.tracker.counters.commands++;
    this.seq = (this.seq + 1) & 0xff;
    const seq = this.seq;
    const { cmd, payload } = encodeCommand(c);
    const bytes = encodeFrame({ seq, cmd, payload });
    // time on the wire for the frame and a short reply at 10 bits per byte
    const wireMs = Math.ceil(((bytes.length + FRAME_OVERHEAD + 2) * 10 * 1000) / this.baudRate);
    let lastNak: number | undefined;
    for (let attempt = 0; attempt <= this.timing.retries; attempt++) {
      if (attempt > 0) this.tracker.counters.retries++;
      const reply = new Promise<Reply>((resolve) => {
        const timer = setTimeout(() => settle({ kind: 'timeout' }), this.timing.ackTimeoutMs + wireMs);
        const settle = (r: Reply): void => {
          clearTimeout(timer);
          if (this.waiting?.seq === seq) this.waiting = undefined;
          resolve(r);
        };
        this.waiting = { seq, settle };
      });
      try {
        await this.link.write(bytes);
      } catch (e) {
        this.waiting?.settle({ kind: 'timeout' });
        const error = e instanceof RcError ? e : new RcError(ErrorCode.IoPortUnavailable, `${what}: write failed`, { port: this.port });
        this.tracker.failure(error);
        return { ok: false, error };
      }
      const r = await reply;
      this.touch();
      if (r.kind === 'ack') {
        this.tracker.success();
        return { ok: true, reply: r.frame };
      }
      if (r.kind === 'nak') {
        lastNak = r.reason;
        this.log.debug({ seq, reason: r.reason, attempt }, `${what}: NAK`);
        if (!nakIsRetryable(r.reason)) break;
      } else {
        lastNak = undefined;
        if (!this.link.isOpen) break;
      }
    }
    const error =
      lastNak !== undefined
        ? new RcError(ErrorCode.IoNack, `${what} refused by ${this.name} (NAK reason ${lastNak})`, { port: this.port, reason: lastNak })
        : !this.link.isOpen
          ? new RcError(ErrorCode.IoPortUnavailable, `${what}: serial port ${this.port} went away`, { port: this.port })
          : new RcError(ErrorCode.IoNoAck, `${what}: no acknowledgement from ${this.name} after ${this.timing.retries + 1} attempts`, {
              port: this.port,
              attempts: this.timing.retries + 1,
            });
    this.tracker.failure(error);
    return { ok: false, error };
  }

  protected async ping(): Promise<void> {
    await this.request({ type: 'ping' }, 'PING');
  }

  protected abstract onPeripheralEvent(e: PeripheralEvent): void;
}

// ─────────────────────────────── 4. drivers ───────────────────────────────

export class Rcp1Turnstile extends Rcp1Peripheral implements Turnstile {
  readonly kind = 'turnstile' as const;
  private state_: TurnstileState = 'unknown';
  private opens: Promise<unknown> = Promise.resolve();
  private passWaiter: { direction: Direction; resolve(o: PassOutcome): void } | undefined;
  private readonly listeners = new Set<(e: TurnstileEvent) => void>();

  get state(): TurnstileState {
    return this.state_;
  }

  onEvent(listener: (e: TurnstileEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  openForEntry(): Promise<PassOutcome> {
    return this.open('entry');
  }

  openForExit(): Promise<PassOutcome> {
    return this.open('exit');
  }

  async close(): Promise<boolean> {
    this.passWaiter?.resolve('not-passed');
    const r = await this.request({ type: 'close' }, 'CLOSE');
    if (r.ok) this.setState('closed');
    return r.ok;
  }

  async freePassage(on: boolean): Promise<boolean> {
    const r = await this.request({ type: 'free-passage', on }, on ? 'FREE_PASSAGE on' : 'FREE_PASSAGE off');
    if (r.ok) this.setState(on ? 'free-passage' : 'closed');
    return r.ok;
  }

  private open(direction: Direction): Promise<PassOutcome> {
    const run = this.opens.then(() => this.openOnce(direction));
    this.opens = run.catch(() => undefined);
    return run;
  }

  private async openOnce(direction: Direction): Promise<PassOutcome> {
    let guard: NodeJS.Timeout | undefined;
    // The waiter exists before the command goes out: PASSED may follow the ACK at once.
    const outcome = new Promise<PassOutcome>((resolve) => {
      this.passWaiter = {
        direction,
        resolve: (o) => {
          if (guard) clearTimeout(guard);
          this.passWaiter = undefined;
          resolve(o);
        },
      };
    });
    const waiter = this.passWaiter;
    const r = await this.request({ type: 'open', direction, windowMs: this.timing.passWindowMs }, `OPEN ${direction}`);
    if (!r.ok) {
      waiter?.resolve('not-passed');
      return outcome;
    }
    if (this.passWaiter === waiter) {
      this.setState(direction === 'entry' ? 'open-entry' : 'open-exit');
      guard = setTimeout(() => {
        this.tracker.failure(
          new RcError(
            ErrorCode.IoTimeout,
            `${this.name} did not report passage or open timeout within ${this.timing.passWindowMs + this.timing.passGuardMs} ms`,
            {
              port: this.port,
            },
          ),
        );
        this.setState('unknown');
        waiter?.resolve('not-passed');
      }, this.timing.passWindowMs + this.timing.passGuardMs);
    }
    return outcome;
  }

  protected onPeripheralEvent(e: PeripheralEvent): void {
    const at = new Date().toISOString();
    if (e.type === 'tamper') {
      logTamper(this, e.detail);
      this.emit({ type: 'tamper', detail: e.detail, at });
      return;
    }
    if (e.type === 'boot') {
      // an open in progress is lost with the controller's memory
      this.passWaiter?.resolve('not-passed');
      this.setState('unknown');
      return;
    }
    this.emit({ type: e.type, direction: e.direction, at });
    if (this.state_ !== 'free-passage') this.setState('closed');
    const w = this.passWaiter;
    if (w && w.direction === e.direction) w.resolve(e.type === 'passed' ? 'passed' : 'not-passed');
  }

  protected override onPortOpen(): void {
    super.onPortOpen();
    // the controller may have rebooted while we were away
    this.setState('unknown');
  }

  protected override onPortDown(): void {
    super.onPortDown();
    this.passWaiter?.resolve('not-passed');
  }

  protected override async beforeStop(): Promise<void> {
    this.passWaiter?.resolve('not-passed');
    if (this.state_ !== 'free-passage' && this.link.isOpen) await this.close();
  }

  private setState(s: TurnstileState): void {
    if (s === this.state_) return;
    this.state_ = s;
    this.emit({ type: 'state', state: s, at: new Date().toISOString() });
  }

  private emit(e: TurnstileEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err }, 'turnstile listener threw');
      }
    }
  }
}

export class Rcp1Display extends Rcp1Peripheral implements Display {
  readonly kind = 'display' as const;

  async show(msg: DisplayMessage): Promise<boolean> {
    const fit = utf8Fit(msg.text, MAX_TEXT_BYTES);
    if (fit.truncated) this.log.info({ port: this.port, bytes: Buffer.byteLength(msg.text) }, `display text cut to ${MAX_TEXT_BYTES} bytes`);
    const r = await this.request({ type: 'show', light: msg.light, beep: msg.beep, text: msg.text }, 'SHOW');
    return r.ok;
  }

  protected onPeripheralEvent(e: PeripheralEvent): void {
    if (e.type === 'tamper') logTamper(this, e.detail);
  }
}

function logTamper(p: { readonly name: string; readonly port: string; readonly logger: Logger }, detail: number): void {
  const err = new RcError(ErrorCode.IoTamper, `${p.name} reports tampering (detail ${detail})`, { port: p.port, detail });
  p.logger.warn({ err: err.toJSON() }, err.message);
}

export const rcp1: ProtocolDefinition = {
  name: 'rcp1',
  createTurnstile: (ctx: SerialPeripheralContext) => new Rcp1Turnstile(ctx),
  createDisplay: (ctx: SerialPeripheralContext) => new Rcp1Display(ctx),
};
