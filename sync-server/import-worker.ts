/**
 * The import's worker thread (started by import-thread.ts; a tsup entry of its own, dist/import-worker.js): one
 * import at a time, its steps exactly those of the server's thread (import-stage.ts stageImport, applyStaged), on a
 * connection of its own to the registry file (WAL: the server's thread reads meanwhile, and writes between the
 * worker's short transactions). Crash safety is the staging's: the same rows, phases and flags in the registry.
 */
import Database from 'better-sqlite3';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../protocol/log.js';
import { applyStaged, failure, openImport, stageImport, type Turns } from './import-stage.js';
import { errorOf, type FromWorker, type ToWorker, type WireSpec, type WorkerInit } from './import-thread.js';
import { DEFAULT_PUBLISHER_OPTIONS, Publisher } from './publisher.js';
import { immediateTransactions } from './registry.js';

const port = parentPort;
if (!port) throw new Error('import-worker.ts runs in a worker thread (import-thread.ts)');
const init = workerData as WorkerInit;
const db = immediateTransactions(new Database(init.file, { timeout: 5_000 }));
// no fsync under the registry's write lock (the server's commits would wait for it): the worker's commits are ordered in the
// WAL (a power cut loses a suffix of them, which the staging and recovery are built for), and the import's end is made
// durable by the fsync below (`durable`) before the server answers or publishes it
db.pragma('synchronous = NORMAL');
db.pragma('cache_size = -262144');
db.pragma('temp_store = MEMORY');
const log = createLogger().child({ component: 'import-worker' });
const post = (m: FromWorker) => port.postMessage(m);

/** Every commit so far on disk: an fsync of the WAL (opened by path: SQLite truncates it, never replaces it; a checkpoint synced what it moved). */
function durable(): void {
  let fd: number;
  try {
    fd = openSync(`${init.file}-wal`, 'r');
  } catch {
    return; // no WAL: everything is in the database file, synced by the checkpoint that removed it
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// the upload's chunks as the server's thread passes them on
let chunks: (string | Uint8Array)[] = [];
let ended = false;
let aborted: Error | null = null;
let wake: (() => void) | null = null;
async function* upload(): AsyncGenerator<string | Uint8Array> {
  for (;;) {
    const c = chunks.shift();
    if (c !== undefined) {
      post({ t: 'more' });
      yield c;
      continue;
    }
    if (aborted) throw aborted;
    if (ended) return;
    await new Promise<void>((r) => (wake = r));
    wake = null;
  }
}

// each step waits for the server's thread to grant the next (import-thread.ts); every step is short (Pace): the
// server's thread may commit at any moment (an upload, a device's status) and then waits for the step under way
let granted: (() => void) | null = null;
const turns: Turns = {
  busy: () => true,
  pause: () =>
    new Promise<void>((r) => {
      granted = r;
      post({ t: 'turn' });
    }),
};
let applyNow: (() => void) | null = null;

async function run(spec: WireSpec): Promise<void> {
  chunks = [];
  ended = false;
  aborted = null;
  let id: number;
  try {
    id = openImport(db, spec.kind, spec.today);
  } catch (e) {
    return post({ t: 'failed', error: failure(e) });
  }
  post({ t: 'started', id });
  try {
    const tokenKey = { ...spec.tokenKey, key: Buffer.from(spec.tokenKey.key) };
    const report = await stageImport(db, id, { ...spec, tokenKey }, upload(), turns);
    post({ t: 'staged', report });
    await new Promise<void>((r) => (applyNow = r));
    // a publisher of this import's own: its materializer reads the categories the rules define now (not cached from an earlier import)
    const publisher = new Publisher(db, init.signingKey, log, { ...DEFAULT_PUBLISHER_OPTIONS, ...init.publisher });
    const { changed, ms } = await applyStaged(db, id, spec.kind, report.applied, spec.today, publisher, turns);
    durable();
    // the retained topics the new versions dropped (old snapshots, expired deltas): the server's publisher clears them
    const clears: string[] = [];
    publisher.setTransport({ publish: (topic) => Promise.resolve(void clears.push(topic)) });
    await publisher.publish([]);
    post({ t: 'applied', changed, ms, clears });
  } catch (e) {
    post({ t: 'failed', error: failure(e) });
  }
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'import':
      void run(m.spec);
      return;
    case 'chunk':
      chunks.push(m.data);
      return wake?.();
    case 'end':
      ended = true;
      return wake?.();
    case 'abort':
      aborted = errorOf(m.error);
      return wake?.();
    case 'turn': {
      const g = granted;
      granted = null;
      return g?.();
    }
    case 'apply': {
      const go = applyNow;
      applyNow = null;
      return go?.();
    }
    case 'close':
      db.close();
      port.close();
      return;
  }
});
