import type { Logger } from '../../protocol/log.js';
import type { Store } from '../store/index.js';
import type { Clock } from './clock.js';

/** Default retention of acknowledged journal entries on the device. */
export const JOURNAL_RETENTION_MS = 30 * 86_400_000;

/** No housekeeping this soon after a tap (ms on the monotonic clock): the next card may be on its way. */
const QUIET_AFTER_TAP_MS = 1000;
const PRUNE_EVERY_MS = 3_600_000;

export interface HousekeepingOptions {
  store: Store;
  log: Logger;
  clock: Clock;
  /** Acknowledged journal entries older than this are deleted. */
  retentionMs: number;
  /** A card is being read right now. */
  busy(): boolean;
}

/**
 * Between taps only, on the injected clock: SQLite's WAL checkpoint (so it
 * never lands on a tap), and once an hour the acknowledged journal past
 * retention and old counters.
 */
export class Housekeeping {
  private lastTapMono = -Infinity;
  private lastPruneAt = -Infinity;

  constructor(private readonly o: HousekeepingOptions) {}

  /** A tap just ended: stay quiet for a moment. */
  tapEnded(): void {
    this.lastTapMono = this.o.clock.monoMs();
  }

  run(now = this.o.clock.wallMs()): void {
    const { store, log, clock } = this.o;
    if (this.o.busy() || clock.monoMs() - this.lastTapMono < QUIET_AFTER_TAP_MS) return;
    try {
      store.maintenance();
      if (now - this.lastPruneAt >= PRUNE_EVERY_MS) {
        this.lastPruneAt = now;
        const pruned = store.pruneAcked(now - this.o.retentionMs);
        // counters of the previous month and later stay (quotas are per month, caps per day)
        const d = new Date(now);
        const prev = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
        const counters = store.pruneCounters(prev);
        if (pruned || counters) log.info({ journalPruned: pruned, countersPruned: counters }, 'housekeeping: pruned acknowledged journal and old counters');
      }
    } catch (e) {
      log.warn({ err: e instanceof Error ? e.message : String(e) }, 'housekeeping failed; will retry');
    }
  }
}
