import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { ImportReport } from '../protocol/api.js';
import type { Scope } from '../protocol/lists.js';
import type { TokenKey } from '../protocol/token.js';
import type { CsvSource } from './csv.js';
import { failure, type Applied, type ImportSpec, type ImportSteps, type Turns } from './import-stage.js';
import type { PublisherOptions } from './publisher.js';

/**
 * The server's side of the import's worker thread (import-worker.ts, issue 13: journal acks and /v1/health within
 * 100 ms during a million-row import). The worker parses, tokenises, stages, applies and commits the lists' new
 * versions on its own connection to the registry file; this thread passes the upload's chunks on (a few ahead, so a
 * slow import slows the upload, not the memory), grants each of the worker's short write steps between turns of its
 * event loop (`Turns`: after the acks' shared fsync while uploads are in flight), and publishes what changed.
 * One worker per Importer, started with its first import and closed after IDLE_MS without one.
 */

/** What the worker is started with (workerData). */
export interface WorkerInit {
  file: string;
  signingKey: KeyObject;
  publisher: Partial<PublisherOptions>;
}

/** An import's spec as it crosses to the worker: the key's bytes (a deriver cannot cross). */
export type WireSpec = Omit<ImportSpec, 'tokenKey'> & { tokenKey: TokenKey };
type Failure = ReturnType<typeof failure>;

export type ToWorker =
  | { t: 'import'; spec: WireSpec }
  | { t: 'chunk'; data: string | Uint8Array }
  | { t: 'end' }
  | { t: 'abort'; error: Failure }
  | { t: 'turn' }
  | { t: 'apply' }
  | { t: 'close' };

export type FromWorker =
  | { t: 'started'; id: number }
  | { t: 'more' }
  | { t: 'turn' }
  | { t: 'staged'; report: ImportReport }
  | { t: 'applied'; changed: Scope[]; ms: { apply: number; lists: number }; clears: string[] }
  | { t: 'failed'; error: Failure };

/** Upload chunks sent ahead of the worker's reading. */
const WINDOW = 8;
/** The worker is closed after this long without an import. */
const IDLE_MS = 30_000;

/** The error a worker's failure stands for (an RcError keeps its code and context: the HTTP answer and the report are the same as in-thread). */
export function errorOf(f: Failure): Error {
  return f.rc ? new RcError(f.code, f.message, f.context) : new Error(f.message);
}

/** The modules the server's process was started with (`node --import X …`), in order. */
function preloads(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--import' && i + 1 < argv.length) out.push(argv[++i]!);
    else if (a.startsWith('--import=')) out.push(a.slice('--import='.length));
  }
  return out;
}

/**
 * The built worker (dist/import-worker.js, a tsup entry) beside this module's bundle; else the TypeScript source.
 * Without preloads the built worker starts as it is. Otherwise (the source; `node --import tsx --import preload.ts
 * dist/…`, as tests run) through a small bootstrap, with no execArgv of its own: Node 20 applies the tsx loader of a
 * worker's `--import tsx` neither to its other `--import` modules nor to its entry, so the bootstrap registers tsx
 * through its API, then loads the same preloads (a test's clock, say), then the worker.
 */
function startWorker(init: WorkerInit): Worker {
  const here = import.meta.url;
  const js = new URL('./import-worker.js', here);
  const built = existsSync(fileURLToPath(js));
  const pre = preloads(process.execArgv);
  if (built && pre.length === 0) return new Worker(js, { workerData: init });
  const specs = pre.filter((p) => p !== 'tsx').map((p) => (p.startsWith('.') || isAbsolute(p) ? pathToFileURL(resolvePath(p)).href : p));
  const entry = built ? js.href : new URL('./import-worker.ts', here).href;
  const tsx = !built || pre.includes('tsx') || specs.some((p) => /\.[cm]?ts$/.test(p));
  const api = tsx
    ? pathToFileURL(
        createRequire(here)
          .resolve('tsx/esm/api')
          .replace(/\.cjs$/, '.mjs'),
      ).href
    : null; // tsx's ESM build
  const boot = `(async () => {
    ${api ? `(await import(${JSON.stringify(api)})).register();` : ''}
    for (const m of ${JSON.stringify(specs)}) await import(m);
    await import(${JSON.stringify(entry)});
  })();`;
  return new Worker(boot, { eval: true, workerData: init, execArgv: [] });
}

export class ImportThread {
  private readonly worker: Worker;
  private current: { on(m: FromWorker): void; fail(e: Error): void } | null = null;
  private idle: NodeJS.Timeout | null = null;
  private closed = false;

  /** `gone`: the worker stopped (closed when idle, or died): the Importer starts a new one with the next import. */
  constructor(
    file: string,
    signingKey: KeyObject,
    publisher: Partial<PublisherOptions>,
    private readonly gone: () => void,
  ) {
    this.worker = startWorker({ file, signingKey, publisher });
    this.worker.on('message', (m: FromWorker) => this.current?.on(m));
    this.worker.on('error', (e) => this.current?.fail(e));
    this.worker.on('exit', (code) => {
      this.stop();
      this.current?.fail(new RcError(ErrorCode.ServerInternal, `the import's worker thread stopped (exit code ${code})`));
    });
    this.worker.unref();
  }

  private stop(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idle) clearTimeout(this.idle);
    this.gone();
  }

  /**
   * Start an import in the worker: resolves once its row exists (`onId`), with the parse phase running (`staged`) and
   * `apply` to call once the list changes are serialised. Rejects (or `staged` / `apply` reject) with the import's error.
   */
  start(spec: ImportSpec, source: CsvSource, turns: Turns, onId: (id: number) => void): Promise<ImportSteps> {
    const tk = spec.tokenKey;
    if ('derive' in tk) throw new RcError(ErrorCode.ServerInternal, 'a token deriver cannot cross to the import thread');
    if (this.idle) clearTimeout(this.idle);
    const w = this.worker;
    const post = (m: ToWorker) => w.postMessage(m);
    w.ref(); // an import is running: it keeps the process alive as it did in-thread
    return new Promise<ImportSteps>((resolveSteps, rejectSteps) => {
      let phase: 'start' | 'parse' | 'wait' | 'apply' = 'start';
      let credit = WINDOW;
      let wake: (() => void) | null = null;
      let reading = true;
      let sourceError: unknown = null;
      let stagedDone!: { resolve: (r: ImportReport) => void; reject: (e: unknown) => void };
      const staged = new Promise<ImportReport>((resolve, reject) => (stagedDone = { resolve, reject }));
      staged.catch(() => undefined); // awaited by the caller; not an unhandled rejection meanwhile
      let appliedDone: { resolve: (r: Applied) => void; reject: (e: unknown) => void } | null = null;
      const stopReading = () => {
        reading = false;
        wake?.();
      };
      const end = () => {
        this.current = null;
        w.unref();
        if (!this.closed)
          this.idle = setTimeout(() => {
            this.stop();
            post({ t: 'close' });
          }, IDLE_MS).unref();
      };
      const fail = (e: unknown) => {
        stopReading();
        if (phase === 'start') rejectSteps(e);
        else if (phase === 'parse') stagedDone.reject(e);
        else if (phase === 'apply') appliedDone?.reject(e);
        end(); // in 'wait' too (the worker died between the phases): apply rejects at once
      };
      const pump = async () => {
        try {
          for await (const data of source) {
            while (credit <= 0 && reading) await new Promise<void>((r) => (wake = r));
            if (!reading) break;
            credit--;
            post({ t: 'chunk', data });
          }
          if (reading) post({ t: 'end' });
        } catch (e) {
          sourceError = e;
          if (reading) post({ t: 'abort', error: failure(e) });
        }
      };
      this.current = {
        fail: (e) => fail(e),
        on: (m) => {
          switch (m.t) {
            case 'started':
              phase = 'parse';
              onId(m.id);
              void pump();
              resolveSteps({
                id: m.id,
                staged,
                apply: () => {
                  if (this.current === null || this.closed) return Promise.reject(new RcError(ErrorCode.ServerInternal, "the import's worker thread stopped"));
                  w.ref();
                  phase = 'apply';
                  return new Promise((resolve, reject) => {
                    appliedDone = { resolve, reject };
                    post({ t: 'apply' });
                  });
                },
              });
              return;
            case 'more':
              credit++;
              wake?.();
              return;
            case 'turn':
              void turns
                .pause()
                .catch(() => undefined) // an fsync that failed fails the acks waiting for it, not the import
                .then(() => post({ t: 'turn' }));
              return;
            case 'staged':
              stopReading();
              phase = 'wait';
              w.unref(); // until the list changes are serialised (`apply`)
              stagedDone.resolve(m.report);
              return;
            case 'applied':
              appliedDone?.resolve({ changed: m.changed, ms: m.ms, clears: m.clears });
              end();
              return;
            case 'failed':
              // an upload cut short: the error it was cut with (the worker recorded its code)
              fail(phase === 'parse' && sourceError !== null ? sourceError : errorOf(m.error));
              return;
          }
        },
      };
      post({ t: 'import', spec: { ...spec, tokenKey: { version: tk.version, key: tk.key, ...(tk.scheme ? { scheme: tk.scheme } : {}) } } });
    });
  }
}
