import { ErrorCode } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import type { Scope } from '../protocol/lists.js';
import { clearRecompute, pendingRecompute } from './import.js';
import { markRecovered, recoverStagedImports } from './import-stage.js';
import type { Publisher } from './publisher.js';
import type { Db } from './registry.js';

/**
 * Crash safety of imports, at start (start/lists.ts, before anything is served):
 *  1. an import cut short while its file was read is dropped (nothing of it was applied); one whose file
 *     was staged whole is applied to its end (import-stage.ts: never half of a file);
 *  2. every chunk of an import's registry changes also recorded the scopes to recompute (meta
 *     'import.recompute', cleared only once the publisher committed the lists), and a staged commit of
 *     the lists cut short left its scopes marked "rewriting" (publisher.ts commitStaged): those scopes are
 *     recomputed whole from the registry (a rewritten one as a snapshot-only version), so the registry and
 *     the published lists never disagree. Publishing follows on connection.
 */
export function finishInterruptedImport(db: Db, publisher: Publisher, log: Logger): Scope[] {
  const recovered = recoverStagedImports(db, log);
  const scopes = pendingRecompute(db);
  const rewriting = publisher.rewriting();
  const changed = publisher.recoverRewrites(scopes);
  clearRecompute(db);
  markRecovered(db, recovered);
  if (scopes.length > 0 || rewriting.length > 0)
    log.warn({ scopes, rewriting, changed, code: ErrorCode.ServerImportInterrupted }, 'an interrupted import was finished: lists recomputed from the registry');
  return changed;
}
