import type { KeyObject } from 'node:crypto';
import { ErrorCode, RcError, isRcError } from '../protocol/errors.js';
import type { ImportAnswer, ImportKind, ImportRecord, ImportReport } from '../protocol/api.js';
import type { Scope } from '../protocol/lists.js';
import type { Logger } from '../protocol/log.js';
import type { TokenKey } from '../protocol/token.js';
import type { TokenDeriver } from '../protocol/token-hsm.js';
import type { CsvSource } from './csv.js';
import {
  applyContext,
  clearRecompute,
  firstOfPerson,
  importReport,
  markRecompute,
  pendingRecompute,
  validRows,
  yieldToLoop,
  type ApplyContext,
  type ParseTally,
  type Staged,
} from './import.js';
import { markAll } from './materialize.js';
import { ImportThread } from './import-thread.js';
import { relaxed, type Publisher, type PublisherOptions } from './publisher.js';
import { currentVersions, type Db } from './registry.js';
import { dialectOf } from './db/sql.js';
import { connectionUrl, PgDb } from './db/pg.js';
import type { PgCopyClient } from './db/pg-copy.js';
import type { GuardianRow } from './notify/guardians.js';

/**
 * Imports in short transactions, so a million-row file does not hold the event loop (HTTP API, MQTT
 * ingest) for tens of seconds, and one writer (SQLite has one) never holds the lock for long:
 *
 *  1. parse:  rows are validated and tokenised as the upload streams in, and staged in `import_stage`,
 *             STAGE_ROWS per transaction, the event loop getting a turn between; on PostgreSQL through one
 *             COPY on a connection of its own, in one transaction with the switch to "apply" (`stageByCopy`).
 *             A refused file (a bad row without skipInvalid, a size limit, an upload cut short) drops the
 *             stage: the registry is unchanged.
 *  2. apply:  the phase is recorded with the last staged rows; then the staged rows are applied to the
 *             registry APPLY_ROWS per transaction, each transaction deleting the rows it applied and
 *             recording the scopes to recompute (import.ts markRecompute).
 *  3. lists:  the publisher's staged commit (publisher.ts commitStaged), then the recompute flag is cleared.
 *
 * A crash (kill -9, power loss) at any point: at the next start `recoverStagedImports` drops a stage that
 * was still being read (nothing was imported), or applies the rest of a stage that was complete (the import
 * is kept whole: never half of a file); then import-recovery.ts recomputes the flagged lists.
 * One import at a time: a second one while one runs is refused with import.busy (not queued: its upload
 * is not read). The imports and their progress are kept in `imports` (GET /v1/imports).
 */

/** Rows staged per transaction (a few milliseconds), and applied per transaction, while no upload is in flight. */
const STAGE_ROWS = 2_000;
const APPLY_ROWS = 2_000;
/** While uploads are in flight (Turns.busy): a step's rows are sized to take about this long. */
const BUSY_STEP_MS = 5;
const MIN_STEP_ROWS = 50;
/**
 * Entries per write step of the lists' staged commit while uploads are in flight: at most this many, however fast
 * the last step was (a step of 2,000 took 2 ms, the next 47 ms, behind a checkpoint: measured at 100,000 rows).
 */
const MAX_LIST_STEP = 500;

/**
 * What an import's steps wait for between them. In the server's thread (`loopTurns`): a turn of the event loop, and
 * while uploads are in flight their shared fsync. In the import's worker thread (import-worker.ts): the server's
 * thread grants each step the same way, so a step's writes never wait behind an ack's commit, nor the other way round
 * for longer than one short step.
 */
export interface Turns {
  /** Steps are short (uploads are in flight; always in the worker thread). */
  busy(): boolean;
  /** Between two steps (each one short transaction). */
  pause(): Promise<void>;
}

/** The turns of the server's own event loop: `busy` and `durable` as ImporterOptions. */
export function loopTurns(busy: () => boolean = () => false, durable?: () => Promise<void>): Turns {
  return {
    busy,
    pause: async () => {
      await yieldToLoop();
      if (!busy()) return;
      // the step's writes synced now, on the fsync acks share (ingest.ts GroupCommit): an ack's fsync then covers one
      // step's pages, not every step written since the last ack
      if (durable) await durable();
      else await new Promise((r) => setTimeout(r, 1));
    },
  };
}

/**
 * The import's pace (issue 13: journal acks within 100 ms during a million-row import). While uploads are in
 * flight a step's rows are sized from the last step's time to about BUSY_STEP_MS, so a commit of the acks waits at
 * most that long for the registry's one writer; otherwise steps stay large (the import's own time).
 */
class Pace {
  private rows = MIN_STEP_ROWS * 4;
  readonly pause: () => Promise<void>;
  constructor(
    private readonly turns: Turns,
    private readonly max = APPLY_ROWS,
  ) {
    this.pause = turns.pause;
  }
  /** Rows for the next step (at most `max`). */
  size(max: number): number {
    return this.turns.busy() ? Math.min(max, this.rows) : max;
  }
  /** A step of `n` rows took `ms`. */
  took(n: number, ms: number): void {
    if (n > 0) this.rows = Math.max(MIN_STEP_ROWS, Math.min(this.max, Math.floor((n * BUSY_STEP_MS) / Math.max(ms, 0.1))));
  }
}
/** Imports kept in the table (older ones are deleted when a new one starts). */
const KEEP_IMPORTS = 500;

type Cell = string | number | null;
type StageRow = { seq: number; first: number; a: Cell; b: Cell; c: Cell; d: Cell; e: Cell; f: Cell; g: Cell };

function toStage(r: Staged): [number, Cell, Cell, Cell, Cell, Cell, Cell, Cell] {
  const first = r.first ? 1 : 0;
  switch (r.kind) {
    case 'cards':
      return [first, r.person, r.token, r.keyVersion, r.expiry, null, null, null];
    case 'benefits':
      return [first, r.person, r.category, r.from, r.to, null, null, null];
    case 'enrolments':
      return [first, r.person, r.school, r.role, r.grade, r.meal, r.from, r.to];
    case 'stoplist':
      return [first, r.token, r.reason, null, null, null, null, null];
    case 'routes':
      return [first, r.carrier, r.name, r.inn, r.route, r.from, null, null];
    case 'partners':
      return [first, r.id, r.name, r.category, r.discount, null, null, null];
    case 'guardians':
      return [first, r.person, JSON.stringify(r.row), null, null, null, null, null];
  }
}

function fromStage(kind: ImportKind, s: StageRow): Staged {
  const t = (v: Cell) => v as string;
  // numbers come back as numbers from SQLite's untyped cells, as text from PostgreSQL's (text columns there)
  const n = (v: Cell) => (v === null ? null : Number(v));
  switch (kind) {
    case 'cards':
      return { kind, person: t(s.a), token: t(s.b), keyVersion: n(s.c)!, expiry: t(s.d) };
    case 'benefits':
      return { kind, person: t(s.a), category: t(s.b), from: t(s.c), to: t(s.d), first: s.first === 1 };
    case 'enrolments':
      return {
        kind,
        person: t(s.a),
        school: t(s.b),
        role: t(s.c),
        grade: n(s.d),
        meal: s.e as string | null,
        from: t(s.f),
        to: t(s.g),
        first: s.first === 1,
      };
    case 'stoplist':
      return { kind, token: t(s.a), reason: t(s.b) };
    case 'routes':
      return { kind, carrier: t(s.a), name: t(s.b), inn: t(s.c), route: t(s.d), from: t(s.e) };
    case 'partners':
      return { kind, id: t(s.a), name: t(s.b), category: t(s.c), discount: n(s.d)! };
    case 'guardians':
      // staged by this import from a row GuardianRow validated; stored as its JSON
      return { kind, person: t(s.a), row: JSON.parse(t(s.b)) as GuardianRow, first: s.first === 1 };
  }
}

/** Apply up to `limit` staged rows (APPLY_ROWS, fewer while uploads are in flight) in one transaction (and drop them from the stage); false when the stage is empty. */
function applyStep(db: Db, ctx: ApplyContext, limit = APPLY_ROWS): boolean {
  const rows = db.prepare('SELECT seq, first, a, b, c, d, e, f, g FROM import_stage ORDER BY seq LIMIT ?').all(limit) as StageRow[];
  if (rows.length === 0) return false;
  relaxed(db, () =>
    db.transaction(() => {
      ctx.apply(rows.map((r) => fromStage(ctx.kind, r)));
      db.prepare('DELETE FROM import_stage WHERE seq <= ?').run(rows[rows.length - 1]!.seq);
      markRecompute(db, ctx.dirty.keys());
    })(),
  );
  return true;
}

/** Drop up to 10,000 staged rows; false when the stage is empty. */
function clearStep(db: Db): boolean {
  return relaxed(db, () => db.prepare('DELETE FROM import_stage WHERE seq IN (SELECT seq FROM import_stage ORDER BY seq LIMIT 10000)').run().changes > 0);
}

function finish(db: Db, id: number, state: 'done' | 'failed', e?: unknown, message?: string): void {
  const code = e === undefined ? null : isRcError(e) ? e.code : ErrorCode.ServerInternal;
  const text = message ?? (e === undefined ? null : e instanceof Error ? e.message : String(e));
  db.prepare('UPDATE imports SET state = ?, phase = ?, finished_at = ?, error = ?, message = ? WHERE id = ?').run(
    state,
    state,
    new Date().toISOString(),
    code,
    text,
    id,
  );
}

/**
 * At start, before the lists are recomputed (import-recovery.ts): an import that was still reading its
 * file is dropped (failed, server.import-interrupted); one whose file was staged whole is applied to
 * its end. Returns the imports applied here (their lists are recomputed by the caller).
 */
export function recoverStagedImports(db: Db, log: Logger): number[] {
  const running = db.prepare("SELECT id, kind, phase, applied, today FROM imports WHERE state = 'running' ORDER BY id").all() as {
    id: number;
    kind: ImportKind;
    phase: string;
    applied: number | null;
    today: string;
  }[];
  const finished: number[] = [];
  for (const r of running) {
    if (r.phase === 'apply') {
      const ctx = applyContext(db, r.kind, r.applied ?? 0, r.today);
      while (applyStep(db, ctx));
      log.warn({ import: r.id, kind: r.kind, code: ErrorCode.ServerImportInterrupted }, 'an import stopped while applied: the rest of its file was applied');
    }
    if (r.phase === 'apply' || r.phase === 'lists') {
      db.prepare("UPDATE imports SET phase = 'lists' WHERE id = ?").run(r.id);
      finished.push(r.id);
    } else {
      finish(db, r.id, 'failed', new RcError(ErrorCode.ServerImportInterrupted, 'the server stopped while the file was read: nothing imported'));
      log.warn({ import: r.id, kind: r.kind, code: ErrorCode.ServerImportInterrupted }, 'an import stopped while its file was read: nothing imported');
    }
  }
  while (clearStep(db));
  return finished;
}

/** The imports finished at start once their lists are recomputed. */
export function markRecovered(db: Db, ids: readonly number[]): void {
  for (const id of ids) finish(db, id, 'done', undefined, 'finished at the next start of the server');
}

/** What one import reads its file with (the same in the server's thread and in the import's worker). */
export interface ImportSpec {
  kind: ImportKind;
  skipInvalid: boolean;
  today: string;
  /** Benefit categories the published rules define (at the start of the import). */
  categories: readonly string[];
  tokenKey: TokenKey | TokenDeriver;
}

/** A new import, running and reading its file; older imports beyond KEEP_IMPORTS are deleted. */
export function openImport(db: Db, kind: ImportKind, today: string): number {
  const row = db
    .prepare("INSERT INTO imports(kind, state, phase, today, started_at) VALUES (?, 'running', 'parse', ?, ?) RETURNING id")
    .get(kind, today, new Date().toISOString()) as { id: number };
  const id = Number(row.id);
  db.prepare('DELETE FROM imports WHERE id <= ?').run(id - KEEP_IMPORTS);
  return id;
}

/**
 * Phase 1 (parse): the file's valid rows staged as it streams in, a short transaction a step; the last rows and the
 * switch to "apply" in one durable transaction. A refused file drops the stage and fails the import (its code kept).
 */
export async function stageImport(db: Db, id: number, spec: ImportSpec, source: CsvSource, turns: Turns): Promise<ImportReport> {
  if (db instanceof PgDb) return stageByCopy(db, id, spec, source, turns);
  const { kind, skipInvalid } = spec;
  const pace = new Pace(turns);
  try {
    while (clearStep(db)) await pace.pause(); // normally empty already
    const tally: ParseTally = { rows: 0, rejected: 0, errors: [] };
    const first = firstOfPerson(new Set());
    const ins = db.prepare('INSERT INTO import_stage(first, a, b, c, d, e, f, g) VALUES (?,?,?,?,?,?,?,?)');
    const progress = db.prepare('UPDATE imports SET rows = ? WHERE id = ?');
    let buf: Staged[] = [];
    let staged = 0;
    const flush = (then?: () => void) => {
      const txn = db.transaction(() => {
        for (const r of buf) ins.run(...toStage(r));
        progress.run(tally.rows, id);
        then?.();
      });
      if (then) txn();
      else relaxed(db, () => txn());
      staged += buf.length;
      buf = [];
    };
    const opts = { skipInvalid, tokenKey: spec.tokenKey, today: spec.today, categories: spec.categories };
    for await (const r of validRows(kind, source, opts, tally)) {
      if (tally.rejected > 0 && !skipInvalid) continue; // refused anyway: the rest is read for the report only
      buf.push(first(r));
      if (buf.length >= pace.size(STAGE_ROWS)) {
        const n = buf.length;
        const s0 = performance.now();
        flush();
        pace.took(n, performance.now() - s0);
        await pace.pause();
      }
    }
    if (tally.rejected > 0 && !skipInvalid) buf = [];
    const report = importReport(kind, tally, staged + buf.length, skipInvalid);
    // the last rows and the switch to "apply" in one transaction: from here a crash applies the file whole at the next start
    flush(() => db.prepare("UPDATE imports SET phase = 'apply', applied = ?, rejected = ? WHERE id = ?").run(report.applied, report.rejected, id));
    return report;
  } catch (e) {
    await failImport(db, id, 'parse', e, pace.pause);
    throw e;
  }
}

/** The columns of `import_stage` a staged row fills, in toStage's order. */
const STAGE_COLUMNS = ['first', 'a', 'b', 'c', 'd', 'e', 'f', 'g'] as const;
/** The import's row count (GET /v1/imports) is updated every so many rows while a COPY runs. */
const PROGRESS_ROWS = 10_000;

/**
 * Phase 1 on PostgreSQL (issue 16): the valid rows (tokenised: a token, never a PAN, reaches the COPY) go into
 * `import_stage` through one `COPY … FROM STDIN` on an asynchronous connection of the import's own (db/pg-copy.ts), and
 * the switch to "apply" commits in the same transaction: a crash or a refused file before that commit leaves no staged
 * row at all (PostgreSQL rolls the transaction back), one after it applies the file whole at the next start, as with
 * SQLite's steps. The event loop only formats rows; PostgreSQL takes them at its own pace (the socket's backpressure),
 * instead of one blocking round trip per row over PgDb (≈ 100 µs each).
 */
async function stageByCopy(db: PgDb, id: number, spec: ImportSpec, source: CsvSource, turns: Turns): Promise<ImportReport> {
  const { kind, skipInvalid } = spec;
  const pace = new Pace(turns);
  let copy: PgCopyClient | null = null;
  try {
    while (clearStep(db)) await pace.pause(); // normally empty already
    // loaded here: a SQLite server (and the import's worker thread) never loads node-postgres
    const { PgCopyClient } = await import('./db/pg-copy.js');
    copy = await PgCopyClient.connect(connectionUrl(db));
    await copy.query('BEGIN');
    const stage = copy.copyIn('import_stage', STAGE_COLUMNS);
    const tally: ParseTally = { rows: 0, rejected: 0, errors: [] };
    const first = firstOfPerson(new Set());
    const progress = db.prepare('UPDATE imports SET rows = ? WHERE id = ?'); // this row is the COPY's only at its commit
    let next = PROGRESS_ROWS;
    const opts = { skipInvalid, tokenKey: spec.tokenKey, today: spec.today, categories: spec.categories };
    for await (const r of validRows(kind, source, opts, tally)) {
      if (tally.rows >= next) {
        progress.run(tally.rows, id);
        next = tally.rows + PROGRESS_ROWS;
      }
      if (tally.rejected > 0 && !skipInvalid) continue; // refused anyway: the rest is read for the report only
      if (stage.write(toStage(first(r)))) await stage.drain();
    }
    const report = importReport(kind, tally, stage.rows, skipInvalid); // a refused file throws: rolled back below
    const copied = await stage.end();
    if (copied !== report.applied)
      throw new RcError(ErrorCode.ServerInternal, `the import's COPY took ${copied} of ${report.applied} rows: nothing imported`, { import: id });
    // from this commit a crash applies the file whole at the next start
    await copy.query("UPDATE imports SET rows = $1, phase = 'apply', applied = $2, rejected = $3 WHERE id = $4", [
      tally.rows,
      report.applied,
      report.rejected,
      id,
    ]);
    await copy.query('COMMIT');
    return report;
  } catch (e) {
    await copy?.close(); // uncommitted: PostgreSQL drops the COPY's rows (before failImport writes on the other connection)
    copy = null;
    await failImport(db, id, 'parse', e, pace.pause);
    throw e;
  } finally {
    await copy?.close();
  }
}

/**
 * Phases 2 and 3 (apply, lists): the staged rows applied to the registry a short transaction a step, then the
 * publisher's staged commit of the lists (`publisher` on the same connection as `db`); the import is done. Returns
 * the scopes with a new version (to publish) and the time of each phase. Callers serialise list changes.
 */
export async function applyStaged(
  db: Db,
  id: number,
  kind: ImportKind,
  applied: number,
  today: string,
  publisher: Publisher,
  turns: Turns,
): Promise<{ changed: Scope[]; ms: { apply: number; lists: number } }> {
  const pace = new Pace(turns);
  try {
    const started = performance.now();
    const leftover = pendingRecompute(db); // scopes an earlier failed import left flagged: recomputed whole with this one
    const ctx = applyContext(db, kind, applied, today);
    for (;;) {
      const n = pace.size(APPLY_ROWS);
      const s0 = performance.now();
      if (!applyStep(db, ctx, n)) break;
      pace.took(n, performance.now() - s0);
      await pace.pause();
    }
    for (const s of leftover) markAll(ctx.dirty, s);
    db.prepare("UPDATE imports SET phase = 'lists' WHERE id = ?").run(id);
    const done = performance.now();
    // the lists' writes paced as the apply's, sized afresh (an entry costs other than a row)
    const changed = await publisher.commitStaged(ctx.dirty, new Pace(turns, MAX_LIST_STEP));
    clearRecompute(db); // the lists agree with the registry again (see import-recovery.ts)
    finish(db, id, 'done');
    return { changed, ms: { apply: Math.round(done - started), lists: Math.round(performance.now() - done) } };
  } catch (e) {
    await failImport(db, id, 'apply', e, pace.pause);
    throw e;
  }
}

/** An import that failed: refused before it was applied, nothing of it stays; a fault while applied keeps the lists flagged for recomputation. */
async function failImport(db: Db, id: number, phase: 'parse' | 'apply', e: unknown, pause: () => Promise<void>): Promise<void> {
  if (phase === 'parse') while (clearStep(db)) await pause();
  if (db.prepare('SELECT state FROM imports WHERE id = ?').pluck().get(id) === 'running') finish(db, id, 'failed', e);
}

/** The code and message an import failed with (kept in `imports`; how the worker's errors cross to the server's thread). */
export function failure(e: unknown): { rc: boolean; code: ErrorCode; message: string; context?: Record<string, unknown> } {
  if (isRcError(e)) return { rc: true, code: e.code, message: e.message, ...(e.context ? { context: e.context } : {}) };
  return { rc: false, code: ErrorCode.ServerInternal, message: e instanceof Error ? e.message : String(e) };
}

/** An import running: its row's id, its parse phase (the report once the file is staged whole), and its apply phase to start. */
export interface ImportSteps {
  id: number;
  staged: Promise<ImportReport>;
  apply(report: ImportReport): Promise<Applied>;
}

/** An import applied and its lists committed (durably): the scopes to publish, the retained topics to clear, each phase's time. */
export interface Applied {
  changed: Scope[];
  /** Dropped by a publisher other than the server's (the worker's): Publisher.clearAlso. */
  clears: string[];
  ms: { apply: number; lists: number };
}

export interface ImporterOptions {
  db: Db;
  publisher: Publisher;
  log: Logger;
  /** Serialises everything that changes lists (start/lists.ts). */
  serial: <T>(f: () => Promise<T>) => Promise<T>;
  tokenKey: TokenKey | TokenDeriver;
  /** Benefit categories the published rules define (at the start of each import). */
  categories: () => readonly string[];
  today: () => string;
  /** Uploads are in flight (start/services.ts: ingest.ts Ingest.busy): the import takes short steps and lets them through (Pace). */
  busy?: () => boolean;
  /** The registry's shared fsync (ingest.ts Ingest.durable): while uploads are in flight each step is synced before the next. */
  durable?: () => Promise<void>;
  /**
   * Run the import's steps (parse, stage, apply, the lists' staged commit) in a worker thread with its own connection
   * to the registry file (import-thread.ts), so the server's event loop only passes the file on: what the worker needs
   * to seal the lists' new versions there. Without it, or with the key in a token (a deriver cannot cross threads) or
   * a registry in memory, the steps run in this thread between turns of its event loop.
   */
  worker?: { signingKey: KeyObject; publisher?: Partial<PublisherOptions> };
}

export class Importer {
  private running: number | null = null;
  private thread: ImportThread | null = null;
  constructor(private readonly o: ImporterOptions) {}

  /** Import a file (see the top of this file); the answer once the lists are committed and published. */
  async run(kind: ImportKind, source: CsvSource, skipInvalid: boolean): Promise<ImportAnswer> {
    if (this.running !== null)
      throw new RcError(
        ErrorCode.ImportBusy,
        `import ${this.running > 0 ? `${this.running} ` : ''}is running: one import at a time, nothing of this one was read`,
        {
          ...(this.running > 0 ? { running: this.running } : {}),
        },
      );
    this.running = -1; // taken now: the id follows once the import's row exists
    try {
      const spec: ImportSpec = { kind, skipInvalid, today: this.o.today(), categories: this.o.categories(), tokenKey: this.o.tokenKey };
      const tk = this.o.tokenKey;
      const w = this.o.worker;
      // the worker thread opens the registry's SQLite file; on PostgreSQL the import runs on this thread in short steps
      // (Turns), as with a key in an HSM: libpq's addon (pg-native) is not context-aware, a worker thread cannot load it
      if (w && !('derive' in tk) && !this.o.db.memory && dialectOf(this.o.db) === 'sqlite') {
        this.thread ??= new ImportThread(this.o.db.name, w.signingKey, w.publisher ?? {}, () => (this.thread = null));
        try {
          return await this.runIn(
            spec,
            this.thread.start(spec, source, loopTurns(this.o.busy, this.o.durable), (id) => (this.running = id)),
          );
        } catch (e) {
          // the worker records its failures; one that died (a fault) could not: its import is failed here
          const id = this.running;
          if (id > 0 && this.o.db.prepare('SELECT state FROM imports WHERE id = ?').pluck().get(id) === 'running') finish(this.o.db, id, 'failed', e);
          throw e;
        }
      }
      return await this.runIn(spec, this.here(spec, source));
    } finally {
      this.running = null;
    }
  }

  /** The import's steps in this thread. */
  private here(spec: ImportSpec, source: CsvSource): ImportSteps {
    const { db, publisher } = this.o;
    const turns = loopTurns(this.o.busy, this.o.durable);
    const id = openImport(db, spec.kind, spec.today);
    this.running = id;
    return {
      id,
      staged: stageImport(db, id, spec, source, turns),
      apply: async (report) => ({ ...(await applyStaged(db, id, spec.kind, report.applied, spec.today, publisher, turns)), clears: [] }),
    };
  }

  private async runIn(spec: ImportSpec, steps: ImportSteps | Promise<ImportSteps>): Promise<ImportAnswer> {
    const { db, log } = this.o;
    const t0 = performance.now();
    const { id, staged, apply } = await steps;
    const report = await staged;
    const parsed = performance.now();
    return await this.o.serial(async () => {
      const started = performance.now();
      const { changed, clears, ms } = await apply(report);
      this.o.publisher.clearAlso(clears);
      const published = performance.now();
      await this.o.publisher.publish(changed);
      const timing = { parse: Math.round(parsed - t0), wait: Math.round(started - parsed), ...ms, publish: Math.round(performance.now() - published) };
      log.info({ import: id, kind: spec.kind, rows: report.rows, applied: report.applied, rejected: report.rejected, changed, ms: timing }, 'import applied');
      return { report, versions: currentVersions(db) };
    });
  }

  /** The newest imports first. */
  list(limit = 50): ImportRecord[] {
    const rows = this.o.db
      .prepare('SELECT id, kind, state, rows, applied, rejected, started_at, finished_at, error, message FROM imports ORDER BY id DESC LIMIT ?')
      .all(limit) as {
      id: number;
      kind: ImportKind;
      state: ImportRecord['state'];
      rows: number;
      applied: number | null;
      rejected: number | null;
      started_at: string;
      finished_at: string | null;
      error: string | null;
      message: string | null;
    }[];
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      state: r.state,
      rows: r.rows,
      ...(r.applied !== null ? { applied: r.applied } : {}),
      ...(r.rejected !== null ? { rejected: r.rejected } : {}),
      startedAt: r.started_at,
      ...(r.finished_at !== null ? { finishedAt: r.finished_at } : {}),
      ...(r.error !== null ? { error: r.error } : {}),
      ...(r.message !== null ? { message: r.message } : {}),
    }));
  }
}
