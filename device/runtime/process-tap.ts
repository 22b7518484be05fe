import type { Config } from '../config/schema.js';
import { decide } from '../../protocol/rules/index.js';
import type { Decision, Tap } from '../../protocol/rules/types.js';
import type { KeyedToken } from '../../protocol/token.js';
import type { JournalEntry, Store } from '../store/index.js';

/**
 * One tap end to end, in one transaction: read the view, decide (pure), commit
 * the journal entry and counters durably. Returns both; signal the passenger
 * only after this returns. The runtime, `rc-device replay` and the tests call it.
 * The store knows nothing of the rules: it is handed the decision function.
 * `tokens`: the card's token under each key version the device holds, newest
 * first (CardRead.tokens, or the one token with its version); the first one a
 * list holds decides and is journaled with its version, else the newest.
 */
export function processTap(store: Store, tap: Tap, cfg: Config, tokens?: readonly KeyedToken[]): { decision: Decision; entry: JournalEntry } {
  return store.decideAndCommit(tap, (view, t) => decide(t, view, cfg), tokens);
}
