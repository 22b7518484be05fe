import type { KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCode, RcError, type ErrorCode as Code } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import type { Scope } from '../protocol/lists.js';
import type { TokenKey } from '../protocol/token.js';
import type { CsvLimits, CsvSource } from './csv.js';
import { clearRecompute, pendingRecompute, type ImportKind, type ImportReport } from './import.js';
import { ALL_TOKENS, type Dirty } from './materialize.js';
import type { Publisher, PublisherOptions } from './publisher.js';
import type { Db } from './registry.js';

/**
 * Imports off the event loop: parsing (a keyed hash per card), the registry
 * transaction and the recomputation of the lists run in a worker thread with
 * its own connection to the registry file (WAL: the main thread keeps
 * reading; its writes wait only for the worker's transactions). The main
 * thread feeds it the upload, then publishes the new versions.
 *
 * Crash safety: the import's registry transaction also records the scopes to
 * recompute (meta 'import.recompute'); the flag is cleared after the
 * publisher committed them. At start, `finishInterruptedImport` recomputes
 * whatever is still flagged, so the registry and the lists always agree.
 */
/** What the worker is started with (once per server). */
export interface WorkerSetup {
  dataDir: string;
  tokenKey: TokenKey;
  signingKey: KeyObject;
  publisher: PublisherOptions;
}
/** One import. */
export interface ImportJob {
  kind: ImportKind;
  skipInvalid: boolean;
  today: string;
  limits?: CsvLimits;
}
type Done = { report: ImportReport; changed: Scope[]; clears: string[] };

/** Messages between the main thread and the worker (structured clone; never a PAN). */
export type ToWorker = { start: ImportJob } | { chunk: string | Uint8Array } | { end: true } | { fail: string } | { apply: true };
export type FromWorker =
  { ready: true } | { pull: true } | { parsed: true } | { done: Done } | { error: { code: Code | null; message: string; context?: Record<string, unknown> } };

/** How many chunks of the upload may wait in the worker's queue (back-pressure on the HTTP body). */
const IN_FLIGHT = 8;

/** The worker: dist/import-worker-thread.js next to the bundle, or from source (tsx, vitest) the .ts file through tsx's loader. */
function startWorker(setup: WorkerSetup): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./import-worker-thread.js', import.meta.url), { workerData: setup });
  const entry = new URL('./import-worker-thread.ts', import.meta.url).href;
  const tsx = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData: setup });
}

/**
 * One long-lived worker thread, started with the server (so an import does
 * not wait for it to load), running one import at a time. A worker that died
 * is replaced at the next import.
 */
export class ImportWorker {
  private worker: Worker | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private listener: ((m: FromWorker) => void) | null = null;
  private failure: ((e: Error) => void) | null = null;

  constructor(private readonly setup: WorkerSetup) {}

  /** Start the thread now (it loads its modules and opens the registry while the server starts). */
  warm(): void {
    this.thread();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = startWorker(this.setup);
    w.unref();
    w.on('message', (m: FromWorker) => this.listener?.(m));
    w.on('error', (e) => this.failure?.(e));
    w.on('exit', (code) => {
      if (this.worker === w) this.worker = null;
      this.failure?.(new RcError(ErrorCode.ServerImportInterrupted, `import worker exited (${code}) before the import finished`));
    });
    this.worker = w;
    return w;
  }

  /**
   * Parse the upload as it arrives; then `inOrder` (the server's list-change
   * order) runs `apply`, which writes the registry and commits the lists in
   * the worker, resolving before anything is published.
   */
  run<T>(job: ImportJob, source: CsvSource, inOrder: (apply: () => Promise<Done>) => Promise<T>): Promise<T> {
    const p = this.queue.then(() => this.runOne(job, source, inOrder));
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async runOne<T>(job: ImportJob, source: CsvSource, inOrder: (apply: () => Promise<Done>) => Promise<T>): Promise<T> {
    const worker = this.thread();
    let inFlight = 0;
    let wake: (() => void) | null = null;
    let parsed!: () => void;
    const parsedP = new Promise<void>((r) => (parsed = r));
    let settled = false;
    const result = new Promise<Done>((resolve, reject) => {
      this.failure = reject;
      this.listener = (m) => {
        if ('pull' in m) {
          inFlight--;
          wake?.();
          wake = null;
        } else if ('parsed' in m) parsed();
        else if ('done' in m) resolve(m.done);
        else if ('error' in m) {
          const e = m.error;
          reject(e.code ? new RcError(e.code, e.message, e.context) : new Error(e.message));
        }
      };
    });
    void result.then(
      () => (settled = true),
      () => {
        settled = true;
        wake?.();
      },
    );
    try {
      worker.postMessage({ start: job } satisfies ToWorker);
      try {
        for await (const chunk of source) {
          if (settled) break; // the worker already refused the file
          worker.postMessage({ chunk } satisfies ToWorker);
          inFlight++;
          while (inFlight >= IN_FLIGHT && !settled) await new Promise<void>((r) => (wake = r));
        }
        if (!settled) worker.postMessage({ end: true } satisfies ToWorker);
      } catch (e) {
        if (!settled) worker.postMessage({ fail: e instanceof Error ? e.message : String(e) } satisfies ToWorker);
      }
      await Promise.race([parsedP, result]);
      return await inOrder(() => {
        worker.postMessage({ apply: true } satisfies ToWorker);
        return result;
      });
    } finally {
      this.listener = null;
      this.failure = null;
    }
  }

  async close(): Promise<void> {
    await this.queue;
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}

/**
 * At start: an import that stopped between its registry transaction and the
 * lists' commit (a crash, kill -9, power loss) left its scopes flagged;
 * recompute them whole from the registry. Publishing follows on connection.
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
