import { ErrorCode } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import type { Scope } from '../protocol/lists.js';
import { clearRecompute, pendingRecompute } from './import.js';
import { ALL_TOKENS, type Dirty } from './materialize.js';
import type { Publisher } from './publisher.js';
import type { Db } from './registry.js';

/**
 * Crash safety of imports: the import's registry transaction also records the
 * scopes to recompute (meta 'import.recompute', `applyImport`); the flag is
 * cleared only after the publisher has committed the lists. At start, an import
 * that stopped between the two (a crash, kill -9, power loss) left its scopes
 * flagged: recompute them whole from the registry, so the registry and the
 * published lists never disagree. Publishing follows on connection.
 */
export function finishInterruptedImport(db: Db, publisher: Publisher, log: Logger): Scope[] {
  const scopes = pendingRecompute(db);
  if (scopes.length === 0) return [];
  const dirty: Dirty = new Map();
  for (const s of scopes) dirty.set(s, ALL_TOKENS as Set<string>);
  const changed = publisher.commit(dirty);
  clearRecompute(db);
  log.warn({ scopes, changed, code: ErrorCode.ServerImportInterrupted }, 'an interrupted import was finished: lists recomputed from the registry');
  return changed;
}
