import type { Config } from '../config/schema.js';
import { decide } from '../rules/index.js';
import type { Decision, Tap } from '../rules/types.js';
import type { JournalEntry, Store } from '../store/index.js';

/**
 * One tap end to end, in one transaction: read the view, decide (pure), commit
 * the journal entry and counters durably. Returns both; signal the passenger
 * only after this returns. The runtime, `rc-device replay` and the tests call it.
 */
export function processTap(store: Store, tap: Tap, cfg: Config): { decision: Decision; entry: JournalEntry } {
  return store.inTransaction(() => {
    const view = store.readView(tap.card.token);
    const decision = decide(tap, view, cfg);
    const entry = store.commitTap(tap, decision, view);
    return { decision, entry };
  });
}
