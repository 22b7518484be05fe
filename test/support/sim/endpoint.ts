import { statSync } from 'node:fs';
import { SerialPortStream } from '@serialport/stream';
import { SerialPort } from 'serialport';

/** The peripheral's end of a line: bytes out, bytes in. Writes while the line is down are lost, as on a wire. */
export interface SimEndpoint {
  write(bytes: Uint8Array): void;
  onData(listener: (chunk: Buffer) => void): () => void;
  close(): Promise<void>;
}

/**
 * A simulator's end on a real serial device (a pty from test/support/rig/pty.ts): it
 * opens the path, and when the port goes away (pty removed) it keeps trying
 * to re-open it every retryMs, like controller firmware would.
 */
export class SerialEndpoint implements SimEndpoint {
  private port: SerialPortStream | undefined;
  private readonly listeners = new Set<(chunk: Buffer) => void>();
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly openWaiters: Array<() => void> = [];
  private check: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly baudRate = 19200,
    private readonly retryMs = 50,
    private readonly onOpenChange: (open: boolean) => void = () => undefined,
  ) {
    this.connect();
  }

  get isOpen(): boolean {
    return this.port?.isOpen === true;
  }

  /** Resolves once the port is open (now or after a re-open). */
  opened(): Promise<void> {
    if (this.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.openWaiters.push(resolve));
  }

  write(bytes: Uint8Array): void {
    if (this.port?.isOpen) this.port.write(Buffer.from(bytes));
  }

  onData(listener: (chunk: Buffer) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.check) clearInterval(this.check);
    const p = this.port;
    this.port = undefined;
    if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
  }

  private connect(): void {
    this.timer = undefined;
    if (this.closed) return;
    const p = new SerialPortStream({ binding: SerialPort.binding, path: this.path, baudRate: this.baudRate, autoOpen: false });
    p.open((err) => {
      if (err || this.closed) {
        if (!err) p.close();
        this.retry();
        return;
      }
      this.port = p;
      p.on('data', (chunk: Buffer) => {
        for (const l of this.listeners) l(chunk);
      });
      p.on('error', () => undefined);
      p.on('end', () => {
        if (this.port === p && p.isOpen) p.close();
      });
      // a pty slave does not always notice its master going away: watch the path
      const rdev = rdevOf(this.path);
      this.check = setInterval(() => {
        if (this.port === p && p.isOpen && rdevOf(this.path) !== rdev) p.close();
      }, this.retryMs);
      p.on('close', () => {
        if (this.port !== p) return;
        this.port = undefined;
        if (this.check) clearInterval(this.check);
        this.onOpenChange(false);
        this.retry();
      });
      this.onOpenChange(true);
      for (const w of this.openWaiters.splice(0)) w();
    });
  }

  private retry(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => this.connect(), this.retryMs);
  }
}

function rdevOf(path: string): number | undefined {
  try {
    return statSync(path).rdev;
  } catch {
    return undefined;
  }
}
