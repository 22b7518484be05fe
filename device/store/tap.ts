import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { decide } from '../../protocol/rules/index.js';
import type { Decision, Direction, Tap } from '../../protocol/rules/types.js';
import type { JournalEntry, Store } from './store.js';

/**
 * One tap end to end, in one transaction: read the view, decide (pure), commit
 * the journal entry and counters durably. Returns both; signal the passenger
 * only after this returns.
 */
export function processTap(store: Store, tap: Tap, cfg: Config): { decision: Decision; entry: JournalEntry } {
  return store.decideAndCommit(tap, (view) => decide(tap, view, cfg));
}

let bootId: string | undefined;

/** The kernel's boot id: the monotonic clock is comparable only within one boot. */
export function currentBootId(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = `pid-${process.pid}-${Date.now()}`;
    }
  }
  return bootId;
}

/** Build a Tap from the system clocks now (the runtime's side; the rules never read clocks). */
export function tapNow(card: Tap['card'], direction: Direction | null = null, reader?: string): Tap {
  return {
    wallTime: Date.now(),
    // CLOCK_MONOTONIC (system-wide, since boot): comparable across process restarts in one boot
    monotonicMs: Number(process.hrtime.bigint() / 1_000_000n),
    bootId: currentBootId(),
    direction,
    ...(reader !== undefined ? { reader } : {}),
    card,
  };
}
