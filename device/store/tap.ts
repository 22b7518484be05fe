import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { decide } from '../rules/index.js';
import type { Decision, Tap } from '../rules/types.js';
import type { JournalEntry, Store } from './store.js';

/**
 * One tap end to end, in one transaction: read the view, decide (pure), commit
 * the journal entry and counters durably. Returns both; signal the passenger
 * only after this returns.
 */
export function processTap(store: Store, tap: Tap, cfg: Config): { decision: Decision; entry: JournalEntry } {
  return store.db
    .transaction(() => {
      const view = store.readView(tap.card.token);
      const decision = decide(tap, view, cfg);
      const entry = store.commitTap(tap, decision, view);
      return { decision, entry };
    })
    .immediate();
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
