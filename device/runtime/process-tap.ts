import type { Config } from '../config/schema.js';
import { decide } from '../../protocol/rules/index.js';
import type { Decision, Tap } from '../../protocol/rules/types.js';
import type { JournalEntry, Store } from '../store/index.js';

/**
 * One tap end to end, in one transaction: read the view, decide (pure), commit
 * the journal entry and counters durably. Returns both; signal the passenger
 * only after this returns. The runtime, `rc-device replay` and the tests call it.
 * The store knows nothing of the rules: it is handed the decision function.
 */
export function processTap(store: Store, tap: Tap, cfg: Config): { decision: Decision; entry: JournalEntry } {
  return store.decideAndCommit(tap, (view) => decide(tap, view, cfg));
}
