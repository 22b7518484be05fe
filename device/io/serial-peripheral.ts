import type { RcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { Timing } from './config.js';
import { HealthTracker } from './health.js';
import { SerialLink, type SerialBinding } from './link.js';
import type { PeripheralHealth, PeripheralKind } from './types.js';

/** What the factory hands a protocol to build one peripheral. */
export interface SerialPeripheralContext {
  name: string;
  port: string;
  baudRate: number;
  timing: Timing;
  log: Logger;
  /** serialport binding; tests pass a mock, production leaves it out. */
  binding?: SerialBinding;
}

/**
 * The part every serial peripheral shares whatever its protocol: a SerialLink
 * that reconnects by itself, a HealthTracker, start/stop, and an idle
 * keepalive. A protocol's driver extends it and implements the bytes.
 */
export abstract class SerialPeripheral {
  readonly name: string;
  readonly port: string;
  abstract readonly kind: PeripheralKind;
  abstract readonly protocol: string;
  protected readonly tracker: HealthTracker;
  protected readonly link: SerialLink;
  protected readonly log: Logger;
  protected readonly timing: Timing;
  protected readonly baudRate: number;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private lastActivity = 0;
  private running = false;

  constructor(ctx: SerialPeripheralContext) {
    this.name = ctx.name;
    this.port = ctx.port;
    this.log = ctx.log;
    this.timing = ctx.timing;
    this.baudRate = ctx.baudRate;
    this.tracker = new HealthTracker(ctx.log, ctx.timing.downAfterFailures);
    this.link = new SerialLink(
      {
        path: ctx.port,
        baudRate: ctx.baudRate,
        ...(ctx.binding ? { binding: ctx.binding } : {}),
        reconnectMinMs: ctx.timing.reconnectMinMs,
        reconnectMaxMs: ctx.timing.reconnectMaxMs,
        portCheckMs: ctx.timing.portCheckMs,
        log: ctx.log,
      },
      {
        data: (chunk) => this.onBytes(chunk),
        open: (reconnect) => {
          if (reconnect) this.tracker.counters.reconnects++;
          this.onPortOpen(reconnect);
          this.tracker.setPortOpen(true);
          // Learn at once whether something answers on the new port.
          void this.probe();
        },
        down: (err) => {
          this.onPortDown(err);
          this.tracker.setPortOpen(false, err);
        },
        attempt: () => {
          this.tracker.counters.openAttempts++;
        },
      },
    );
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.link.start();
    if (this.timing.keepaliveMs > 0) {
      this.keepaliveTimer = setInterval(() => {
        if (this.link.isOpen && Date.now() - this.lastActivity >= this.timing.keepaliveMs) void this.probe();
      }, this.timing.keepaliveMs);
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    try {
      await this.beforeStop();
    } catch (e) {
      this.log.error({ err: e }, 'error while stopping peripheral');
    }
    this.running = false;
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
    await this.link.stop();
    this.onPortDown(undefined);
    this.tracker.setPortOpen(false);
  }

  health(): PeripheralHealth {
    return this.tracker.snapshot();
  }

  onHealth(listener: (h: PeripheralHealth) => void): () => void {
    return this.tracker.onHealth(listener);
  }

  get logger(): Logger {
    return this.log;
  }

  /** Marks traffic so the keepalive stays quiet while commands flow. */
  protected touch(): void {
    this.lastActivity = Date.now();
  }

  private async probe(): Promise<void> {
    this.touch();
    try {
      await this.ping();
    } catch (e) {
      this.log.error({ err: e }, 'keepalive threw');
    }
  }

  /** Bytes arrived from the port. */
  protected abstract onBytes(chunk: Buffer): void;
  /** A cheap request that the peripheral must answer; records success/failure in health itself. */
  protected abstract ping(): Promise<void>;
  /** The port (re)opened: reset parsers, forget sequence state. */
  protected onPortOpen(_reconnect: boolean): void {}
  /** The port went away or is being released; err is undefined on stop(). */
  protected onPortDown(_err: RcError | undefined): void {}
  /** Runs before the port is released on stop() (e.g. close the gate). */
  protected async beforeStop(): Promise<void> {}
}
