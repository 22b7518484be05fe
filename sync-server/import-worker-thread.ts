// Worker entry of sync-server/import-worker.ts (built to dist/import-worker-thread.js): imports, one at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { isRcError } from '../protocol/errors.js';
import { createLogger } from '../protocol/log.js';
import type { CsvSource } from './csv.js';
import { applyImport, clearRecompute, parseImport } from './import.js';
import type { FromWorker, ImportJob, ToWorker, WorkerSetup } from './import-worker.js';
import { Publisher } from './publisher.js';
import { openRegistry } from './registry.js';

const port = parentPort!;
const setup = workerData as WorkerSetup;
const send = (m: FromWorker) => port.postMessage(m);

const db = openRegistry(setup.dataDir);
db.pragma('synchronous = FULL'); // as the server: a reported import is on disk
db.pragma('busy_timeout = 60000'); // the worker may wait for the main thread's short writes
const publisher = new Publisher(db, setup.signingKey, createLogger({ level: 'silent' }), setup.publisher);
const tokenKey = { version: setup.tokenKey.version, key: Buffer.from(setup.tokenKey.key) };

// the current import's upload, as the main thread forwards it
type Feed = Exclude<ToWorker, { start: ImportJob } | { apply: true }>;
let feed: Feed[] = [];
let wake: (() => void) | null = null;
let applyNow: (() => void) | null = null;

function upload(): CsvSource {
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (feed.length === 0) await new Promise<void>((r) => (wake = r));
        const m = feed.shift()!;
        if ('end' in m) return;
        if ('fail' in m) throw new Error(m.fail);
        send({ pull: true }); // taken: the main thread may send another
        yield m.chunk;
      }
    },
  };
}

async function run(job: ImportJob): Promise<void> {
  const { rows, report } = await parseImport(job.kind, upload(), {
    skipInvalid: job.skipInvalid,
    tokenKey,
    today: job.today,
    ...(job.limits ? { limits: job.limits } : {}),
  });
  send({ parsed: true });
  await new Promise<void>((r) => (applyNow = r)); // the server's turn for list changes
  // registry and the recompute flag in one transaction; the lists after; the flag cleared last (a crash in between is redone at start)
  const dirty = applyImport(db, job.kind, rows, job.today);
  const changed = publisher.commit(dirty);
  clearRecompute(db);
  const clears = publisher['clears'].splice(0);
  send({ done: { report, changed, clears } });
}

port.on('message', (m: ToWorker) => {
  if ('start' in m) {
    feed = [];
    run(m.start).catch((e: unknown) => {
      if (isRcError(e)) send({ error: { code: e.code, message: e.message, ...(e.context ? { context: e.context } : {}) } });
      else send({ error: { code: null, message: e instanceof Error ? e.message : String(e) } });
    });
  } else if ('apply' in m) {
    applyNow?.();
    applyNow = null;
  } else {
    feed.push(m);
    wake?.();
    wake = null;
  }
});
send({ ready: true });
