import type { Logger } from '../../protocol/log.js';
import type { RcError } from '../../protocol/errors.js';
import type { HealthStatus, PeripheralHealth } from './types.js';

/**
 * Health bookkeeping shared by every peripheral driver: counts, the last
 * error, and the ok/degraded/down status derived from the port state and the
 * run of consecutive failed commands. Listeners hear transitions only.
 */
export class HealthTracker {
  private status: HealthStatus = 'down';
  private since = new Date().toISOString();
  private portOpen = false;
  private consecutiveFailures = 0;
  private lastError: PeripheralHealth['lastError'];
  private readonly listeners = new Set<(h: PeripheralHealth) => void>();
  readonly counters: PeripheralHealth['counters'] = {
    commands: 0,
    retries: 0,
    failures: 0,
    badFrames: 0,
    reconnects: 0,
    openAttempts: 0,
  };

  constructor(
    private readonly log: Logger,
    private readonly downAfterFailures: number,
  ) {}

  snapshot(): PeripheralHealth {
    const h: PeripheralHealth = {
      status: this.status,
      since: this.since,
      portOpen: this.portOpen,
      counters: { ...this.counters },
    };
    if (this.lastError) h.lastError = { ...this.lastError };
    return h;
  }

  onHealth(listener: (h: PeripheralHealth) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setPortOpen(open: boolean, err?: RcError): void {
    this.portOpen = open;
    if (open) this.consecutiveFailures = 0;
    if (err) this.record(err);
    this.update();
  }

  /** An exchange with the peripheral worked. */
  success(): void {
    this.consecutiveFailures = 0;
    this.update();
  }

  /** A command failed (after its retries). Logged at warn when it changes the status, else at debug (keepalives). */
  failure(err: RcError): void {
    this.consecutiveFailures++;
    this.counters.failures++;
    this.record(err);
    const changed = this.update();
    const fields = { err: err.toJSON(), status: this.status, consecutiveFailures: this.consecutiveFailures };
    if (changed) this.log.warn(fields, `${err.message}; peripheral now ${this.status}`);
    else this.log.debug(fields, err.message);
  }

  private record(err: RcError): void {
    this.lastError = { code: err.code, message: err.message, at: new Date().toISOString() };
  }

  private derive(): HealthStatus {
    if (!this.portOpen) return 'down';
    if (this.consecutiveFailures >= this.downAfterFailures) return 'down';
    if (this.consecutiveFailures > 0) return 'degraded';
    return 'ok';
  }

  private update(): boolean {
    const next = this.derive();
    if (next === this.status) return false;
    const prev = this.status;
    this.status = next;
    this.since = new Date().toISOString();
    this.log.info({ from: prev, to: next }, `peripheral ${prev} → ${next}`);
    const snap = this.snapshot();
    for (const l of this.listeners) {
      try {
        l(snap);
      } catch (e) {
        this.log.error({ err: e }, 'health listener threw');
      }
    }
    return true;
  }
}
