import { stat } from 'node:fs/promises';
import { SerialPortStream, type OpenOptions } from '@serialport/stream';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';

/** A serialport binding (the platform's, or the mock in tests). */
export type SerialBinding = OpenOptions['binding'];

export interface SerialLinkOptions {
  path: string;
  baudRate: number;
  /** serialport binding; the platform's real one unless a test passes a mock. */
  binding?: SerialBinding;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /**
   * While open, stat the path this often and re-open when it vanished or now
   * names another device (0: never). A pty slave does not always see its
   * master go away, so this is how a removed pty is noticed. Only for the
   * real binding: a mock's paths are not files.
   */
  portCheckMs: number;
  log: Logger;
}

export interface LinkListeners {
  data(chunk: Buffer): void;
  /** The port opened (first time or after a reconnect). */
  open(reconnect: boolean): void;
  /** The port closed by itself (unplugged, pty gone) or failed to open; the link keeps retrying. */
  down(err: RcError): void;
  /** Every open attempt, successful or not. */
  attempt(): void;
}

/**
 * One serial port that stays open: it opens in the background, and when the
 * port disappears (USB adapter pulled, pty removed) it re-opens it with an
 * exponential backoff (reconnectMinMs doubling to reconnectMaxMs, ±20 % jitter),
 * so a missing port costs a few wake-ups per second at most, never a spin.
 * Nothing here throws to the caller except write() on a closed port.
 */
export class SerialLink {
  private port: SerialPortStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  private stopped = true;
  private everOpened = false;
  private downReported = false;
  private checkTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: SerialLinkOptions,
    private readonly on: LinkListeners,
  ) {
    this.delay = opts.reconnectMinMs;
  }

  get isOpen(): boolean {
    return this.port?.isOpen === true;
  }

  get path(): string {
    return this.opts.path;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.stopCheck();
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) {
      await new Promise<void>((resolve) => port.close(() => resolve()));
    }
  }

  /** Writes bytes; resolves when the binding accepted them. RcError io.port-unavailable when the port is not open. */
  write(bytes: Uint8Array): Promise<void> {
    const port = this.port;
    if (!port?.isOpen) {
      return Promise.reject(new RcError(ErrorCode.IoPortUnavailable, `serial port ${this.opts.path} is not open`, { port: this.opts.path }));
    }
    return new Promise((resolve, reject) => {
      port.write(Buffer.from(bytes), (err) => {
        if (err)
          reject(new RcError(ErrorCode.IoPortUnavailable, `write to ${this.opts.path} failed: ${err.message}`, { port: this.opts.path }, { cause: err }));
        else resolve();
      });
    });
  }

  private async connect(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    this.on.attempt();
    let port: SerialPortStream;
    try {
      port = new SerialPortStream({
        binding: this.opts.binding ?? (await platformBinding()),
        path: this.opts.path,
        baudRate: this.opts.baudRate,
        autoOpen: false,
      });
    } catch (e) {
      this.failed(e);
      return;
    }
    port.open((err) => {
      if (err) {
        this.failed(err);
        return;
      }
      if (this.stopped) {
        port.close();
        return;
      }
      this.port = port;
      this.delay = this.opts.reconnectMinMs;
      const reconnect = this.everOpened;
      this.everOpened = true;
      this.downReported = false;
      port.on('data', (chunk: Buffer) => this.on.data(chunk));
      port.on('error', (e: Error) => this.opts.log.debug({ err: { message: e.message }, port: this.opts.path }, 'serial port error'));
      // A read of 0 bytes (a pty whose other side vanished) ends the stream without closing it: close it, so we reconnect.
      port.on('end', () => {
        if (this.port === port && port.isOpen) port.close();
      });
      port.on('close', (closeErr: Error | null) => {
        if (this.port !== port) return;
        this.port = undefined;
        this.stopCheck();
        if (this.stopped) return;
        this.failed(closeErr ?? new Error('port closed'));
      });
      this.opts.log.info({ port: this.opts.path, reconnect }, reconnect ? 'serial port re-opened' : 'serial port opened');
      this.on.open(reconnect);
      this.startCheck(port);
    });
  }

  private startCheck(port: SerialPortStream): void {
    this.stopCheck();
    if (this.opts.binding || this.opts.portCheckMs <= 0) return;
    let rdev: number | undefined;
    let busy = false;
    const check = async (): Promise<void> => {
      if (busy || this.port !== port) return;
      busy = true;
      try {
        const st = await stat(this.opts.path);
        rdev ??= st.rdev;
        if (st.rdev !== rdev) throw new Error('path now names another device');
      } catch (e) {
        if (this.port === port && port.isOpen) {
          this.opts.log.info({ port: this.opts.path, reason: e instanceof Error ? e.message : String(e) }, 'serial port path went away; closing it to re-open');
          port.close();
        }
      } finally {
        busy = false;
      }
    };
    void check();
    this.checkTimer = setInterval(() => void check(), this.opts.portCheckMs);
  }

  private stopCheck(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
    this.checkTimer = undefined;
  }

  private failed(cause: unknown): void {
    const message = cause instanceof Error ? cause.message : String(cause);
    const err = new RcError(ErrorCode.IoPortUnavailable, `serial port ${this.opts.path} unavailable: ${message}`, { port: this.opts.path }, { cause });
    if (!this.downReported) {
      this.downReported = true;
      this.opts.log.warn({ err: err.toJSON() }, `${err.message}; retrying with backoff`);
    }
    this.on.down(err);
    if (this.stopped) return;
    const jitter = 0.8 + Math.random() * 0.4;
    const wait = Math.max(1, Math.round(this.delay * jitter));
    this.delay = Math.min(this.delay * 2, this.opts.reconnectMaxMs);
    this.timer = setTimeout(() => void this.connect(), wait);
  }
}

let platform: Promise<SerialBinding> | undefined;

/** The OS binding (native, from serialport), loaded on first use so a console-only device never loads it. */
function platformBinding(): Promise<SerialBinding> {
  platform ??= import('serialport').then((m) => m.SerialPort.binding);
  return platform;
}
