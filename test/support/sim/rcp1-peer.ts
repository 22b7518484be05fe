import {
  Cmd,
  FrameParser,
  NakReason,
  STX,
  decodeCommand,
  encodeEvent,
  encodeFrame,
  isCommandFrame,
  type Frame,
  type HostCommand,
  type PeripheralEvent,
} from '../../../device/io/protocols/rcp1.js';
import type { SimEndpoint } from './endpoint.js';

/**
 * How a simulated peripheral misbehaves (zwave-js style behaviours):
 *  - normal: acknowledges, does what it is told;
 *  - never-passes: turnstile only, nobody walks through: OPEN_TIMEOUT after the window;
 *  - silent: stops answering altogether;
 *  - garbage: answers every frame with random bytes instead of an ACK;
 *  - noisy: answers correctly but sprays random bytes (STX included) before each frame;
 *  - nak-first: NAKs (busy) the next n command frames, then behaves normally;
 *  - ack-lost: executes the next n commands but their ACKs are lost on the line.
 */
export type Behaviour =
  | { mode: 'normal' }
  | { mode: 'never-passes' }
  | { mode: 'silent' }
  | { mode: 'garbage' }
  | { mode: 'noisy' }
  | { mode: 'nak-first'; n: number }
  | { mode: 'ack-lost'; n: number };

export interface ReceivedCommand {
  seq: number;
  command: HostCommand;
  /** false when it repeated the previous sequence number (a retry) and was acknowledged without being executed again. */
  executed: boolean;
  at: number;
}

export type PeerTrace = { type: 'command'; seq: number; command: HostCommand; executed: boolean } | { type: 'event'; event: PeripheralEvent; acked: boolean };

export interface Rcp1PeerOptions {
  /** How long the peripheral waits for the host's ACK of an event before sending it again. */
  eventAckTimeoutMs?: number;
  eventRetries?: number;
}

/** Random bytes with plenty of STX and plausible LEN bytes, so the host's parser must really resynchronise. */
export function garbageBytes(n = 4 + Math.floor(Math.random() * 24)): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const r = Math.random();
    b[i] = r < 0.2 ? STX : r < 0.3 ? Math.floor(Math.random() * 8) : Math.floor(Math.random() * 256);
  }
  return b;
}

/** The peripheral's side of RCP/1: parses host frames, acknowledges, dedups retries, sends events with retries. */
export class Rcp1Peer {
  private readonly parser = new FrameParser();
  private behaviour_: Behaviour = { mode: 'normal' };
  private nakLeft = 0;
  private ackLoseLeft = 0;
  private lastSeq = -1;
  private eventSeq = 0;
  private eventWaiter: { seq: number; done(): void } | undefined;
  private eventQueue: Promise<unknown> = Promise.resolve();
  private readonly off: () => void;
  private readonly watchers = new Set<() => void>();
  private idle: NodeJS.Timeout | undefined;
  readonly received: ReceivedCommand[] = [];
  readonly sentEvents: Array<{ event: PeripheralEvent; acked: boolean }> = [];
  /** Called for each newly executed command (not for repeats). */
  onCommand: (c: HostCommand) => void = () => undefined;
  /** Called for every command frame received and every event sent (the process mode prints these). */
  onTrace: (t: PeerTrace) => void = () => undefined;

  constructor(
    private readonly endpoint: SimEndpoint,
    private readonly opts: Rcp1PeerOptions = {},
  ) {
    this.off = endpoint.onData((chunk) => this.onBytes(chunk));
  }

  get behaviour(): Behaviour {
    return this.behaviour_;
  }

  setBehaviour(b: Behaviour): void {
    this.behaviour_ = b;
    this.nakLeft = b.mode === 'nak-first' ? b.n : 0;
    this.ackLoseLeft = b.mode === 'ack-lost' ? b.n : 0;
  }

  /** Forget sequence state, as a rebooted controller would (e.g. after its port came back). */
  reboot(): void {
    this.lastSeq = -1;
    this.parser.reset();
  }

  executed(type?: HostCommand['type']): HostCommand[] {
    return this.received.filter((r) => r.executed && (type === undefined || r.command.type === type)).map((r) => r.command);
  }

  /** Resolves when pred holds (checked after every received frame), or rejects after timeoutMs. */
  waitFor(pred: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (pred()) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`simulator: timed out waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      this.watchers.add(check);
    });
  }

  /** Sends an event and waits for the host's ACK, repeating it (same seq) on silence. Resolves whether it was acknowledged. */
  sendEvent(event: PeripheralEvent): Promise<boolean> {
    const run = this.eventQueue.then(() => this.sendEventOnce(event));
    this.eventQueue = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.off();
    if (this.idle) clearTimeout(this.idle);
    this.eventWaiter?.done();
  }

  private async sendEventOnce(event: PeripheralEvent): Promise<boolean> {
    this.eventSeq = (this.eventSeq + 1) & 0xff;
    const seq = this.eventSeq;
    const { cmd, payload } = encodeEvent(event);
    const frame = encodeFrame({ seq, cmd, payload });
    const retries = this.opts.eventRetries ?? 3;
    let acked = false;
    for (let attempt = 0; attempt <= retries && !acked; attempt++) {
      if (this.behaviour_.mode === 'silent') break;
      acked = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.eventWaiter = undefined;
          resolve(false);
        }, this.opts.eventAckTimeoutMs ?? 100);
        this.eventWaiter = {
          seq,
          done: () => {
            clearTimeout(timer);
            this.eventWaiter = undefined;
            resolve(true);
          },
        };
        this.send(frame);
      });
    }
    this.sentEvents.push({ event, acked });
    this.onTrace({ type: 'event', event, acked });
    this.notify();
    return acked;
  }

  private send(frame: Buffer): void {
    if (this.behaviour_.mode === 'noisy') this.endpoint.write(Buffer.concat([garbageBytes(), frame]));
    else this.endpoint.write(frame);
  }

  private onBytes(chunk: Buffer): void {
    const frames = this.parser.push(chunk);
    if (this.idle) clearTimeout(this.idle);
    if (this.parser.pending > 0) this.idle = setTimeout(() => this.onFrames(this.parser.expire()), 50);
    this.onFrames(frames);
  }

  private onFrames(frames: Frame[]): void {
    for (const f of frames) this.onFrame(f);
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.watchers]) w();
  }

  private onFrame(f: Frame): void {
    const mode = this.behaviour_.mode;
    if (mode === 'silent') return;
    if (f.cmd === Cmd.ACK) {
      if (this.eventWaiter?.seq === f.seq) this.eventWaiter.done();
      return;
    }
    if (f.cmd === Cmd.NAK) return;
    if (mode === 'garbage') {
      this.endpoint.write(garbageBytes());
      return;
    }
    if (!isCommandFrame(f)) {
      this.send(encodeFrame({ seq: f.seq, cmd: Cmd.NAK, payload: Uint8Array.of(NakReason.UNKNOWN_COMMAND) }));
      return;
    }
    if (this.nakLeft > 0) {
      this.nakLeft--;
      this.send(encodeFrame({ seq: f.seq, cmd: Cmd.NAK, payload: Uint8Array.of(NakReason.BUSY) }));
      return;
    }
    const command = decodeCommand(f);
    if (!command) {
      const known = ([Cmd.PING, Cmd.OPEN, Cmd.CLOSE, Cmd.FREE_PASSAGE, Cmd.SHOW, Cmd.CLEAR] as number[]).includes(f.cmd);
      this.send(encodeFrame({ seq: f.seq, cmd: Cmd.NAK, payload: Uint8Array.of(known ? NakReason.BAD_PAYLOAD : NakReason.UNKNOWN_COMMAND) }));
      return;
    }
    const repeat = f.seq === this.lastSeq;
    this.lastSeq = f.seq;
    this.received.push({ seq: f.seq, command, executed: !repeat, at: Date.now() });
    this.onTrace({ type: 'command', seq: f.seq, command, executed: !repeat });
    if (this.ackLoseLeft > 0) this.ackLoseLeft--;
    else this.send(encodeFrame({ seq: f.seq, cmd: Cmd.ACK, payload: new Uint8Array(0) }));
    if (!repeat) this.onCommand(command);
  }
}
