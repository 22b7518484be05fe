import Database from 'better-sqlite3';
import { DEVICE_BUILT_IN_TABLE, type CategoryTable } from '../../protocol/categories.js';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { ListDelta, ListSnapshot } from '../../protocol/lists.js';
import type { Decision, Tap, View } from '../../protocol/rules/types.js';
import type { KeyedToken } from '../../protocol/token.js';
import { Counters } from './counters.js';
import { Journal, journalEntry, type JournalEntry, type JournalEvent } from './journal.js';
import { Lists, SnapshotWriter, type ApplyResult } from './lists.js';
import { CURRENT_STORE_SCHEMA, MIGRATIONS, Meta } from './schema.js';
import { Usage, type UsageApply, type UsageState } from './usage.js';
import { mergeUsage, type UsageContext } from './usage-merge.js';
import { checkScope, checkToken, checkVersion, validateEntries } from './validate.js';

export { SnapshotWriter, validateEntries, type ApplyResult, type JournalEntry, type JournalEvent, type UsageApply, type UsageContext, type UsageState };

/**
 * The device's local store (SQLite through better-sqlite3): lists per scope
 * with versions (lists.ts), counters and marks per token (counters.ts), and the
 * tap journal (journal.ts). This class opens the database and owns every
 * transaction boundary; the modules behind it only run statements.
 *
 * Durability: journal_mode=WAL, synchronous=FULL: every commit fsyncs the WAL
 * before it returns, so a committed tap survives a power cut. All methods are
 * synchronous; one Store per process per file (the runtime holds it).
 *
 * API used by the sync client (issue 4) and the runtime (issue 5):
 *   listVersions()                      → { transit: 12, stoplist: 40, 'school:7': 3 }
 *   listStatus()                        → [{ scope, version, appliedMs }] (list age for status)
 *   applySnapshot(snapshot)             → replaces a scope's list, one transaction
 *   beginSnapshot(scope, version)       → SnapshotWriter: add(chunk)… commit() for chunked
 *                                         downloads; invisible until commit() swaps it in
 *   applyDelta(delta)                   → upserts/removes, one transaction
 *   readView(token)                     → entries, stop-list hit, counters, marks
 *   commitTap(tap, decision, view)      → JournalEntry (durable before it returns)
 *   decideAndCommit(tap, decide, tokens?) → readView + decide (given by the caller) + commitTap, one transaction;
 *                                         with a card's tokens under several key versions, the first listed decides (matchToken)
 *   journalRange(fromSeq, limit)        → entries with seq ≥ fromSeq, ascending
 *   ackUpTo(seq) / ackedSeq() / lastSeq() / journalBacklog()
 *   rewindAck(seq)                      → ack moved back (the server lost acknowledged entries)
 *   pruneAcked(olderThanMs)             → deletes acknowledged entries older than that
 *   applyUsage({fromVersion, toVersion, records}) → fleet usage (snapshot or delta), one transaction
 *   setUsageContext(ctx)                → the tariff's routes and quota periods: readView merges fleet usage from then on
 *   maintenance()                       → call when idle: WAL checkpoint off the tap path
 *   close()
 *
 * List rules: entries are validated with protocol/lists.ts before anything
 * changes (store.list-invalid); the version only moves forward: an older one is
 * store.list-rollback, the same one is a no-op ({ applied: false }); a delta
 * whose fromVersion is not the version held is store.list-version-gap.
 */

export interface StoreOptions {
  /** Device id written into every journal entry. */
  deviceId: string;
  /** 'FULL' (default: durable before green). 'NORMAL' only for throwaway stores (replay without --db). */
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  /** SQLite page cache in KiB (default 8192: lookups hit the OS page cache anyway; keeps RSS low on small devices). */
  cacheKb?: number;
  /** The benefit categories the device's rules define, asked at each list applied (default: the built-in ones). */
  categories?: () => CategoryTable;
}

/** The SQLite settings this connection runs with (durability checks, the bench). */
export interface StoreSettings {
  journalMode: string;
  /** 0 OFF, 1 NORMAL, 2 FULL */
  synchronous: number;
  /** PRAGMA user_version: the store schema (schema.ts) */
  schema: number;
}

export class Store {
  readonly deviceId: string;
  readonly path: string;
  private readonly db: Database.Database;
  private readonly lists: Lists;
  private readonly categories: () => CategoryTable;
  private readonly counters: Counters;
  private readonly journal: Journal;
  private readonly usage: Usage;
  private usageCtx: UsageContext | null = null;
  private closed = false;

  static open(path: string, opts: StoreOptions): Store {
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (e) {
      throw new RcError(ErrorCode.StoreOpenFailed, `cannot open store ${path}: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    try {
      return new Store(db, path, opts);
    } catch (e) {
      db.close();
      if (isRcError(e)) throw e;
      throw new RcError(ErrorCode.StoreOpenFailed, `cannot open store ${path}: ${(e as Error).message}`, { file: path }, { cause: e });
    }
  }

  private constructor(db: Database.Database, path: string, opts: StoreOptions) {
    this.db = db;
    this.path = path;
    this.deviceId = opts.deviceId;
    db.pragma('busy_timeout = 5000');
    const uv = db.pragma('user_version', { simple: true }) as number;
    if (uv > CURRENT_STORE_SCHEMA) {
      throw new RcError(ErrorCode.StoreSchemaTooNew, `store ${path} has schema ${uv}, newer than this software (${CURRENT_STORE_SCHEMA})`, {
        file: path,
        schema: uv,
        supported: CURRENT_STORE_SCHEMA,
      });
    }
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    db.pragma('journal_size_limit = 67108864');
    db.pragma(`cache_size = -${Math.max(512, Math.trunc(opts.cacheKb ?? 8192))}`);
    for (let v = uv; v < CURRENT_STORE_SCHEMA; v++) {
      db.transaction(() => {
        MIGRATIONS[v]!(db);
        db.pragma(`user_version = ${v + 1}`);
      }).immediate();
    }
    const meta = new Meta(db);
    this.categories = opts.categories ?? (() => DEVICE_BUILT_IN_TABLE);
    this.lists = new Lists(db, meta, this.categories);
    this.counters = new Counters(db);
    this.journal = new Journal(db, meta, opts.deviceId);
    this.usage = new Usage(db, opts.deviceId, this.categories);
    // generations left 'staging' by a process that died mid-download are garbage now
    this.lists.abandonStaging();
    this.lists.reload();
    this.collectGarbage();
  }

  private alive(): void {
    if (this.closed) throw new RcError(ErrorCode.StoreOpenFailed, `store ${this.path} is closed`, { file: this.path });
  }

  // ---- lists -------------------------------------------------------------

  /** Version held per scope (scopes never applied are absent, i.e. version 0). */
  listVersions(): Record<string, number> {
    return { ...this.lists.versions() };
  }

  /** Per scope: version and when it was applied (epoch ms), for status reports (list age). */
  listStatus(): Array<{ scope: string; version: number; appliedMs: number }> {
    this.alive();
    return this.lists.status();
  }

  listVersion(scope: string): number {
    return this.lists.version(scope);
  }

  /** Number of entries visible in a scope. */
  entryCount(scope: string): number {
    return this.lists.entryCount(scope);
  }

  /**
   * Replace a scope's whole list, in one transaction: a reader sees the old list
   * or the new one, never a mix. Entries are validated first (store.list-invalid,
   * nothing changed). Old entries are deleted afterwards (collectGarbage).
   */
  applySnapshot(snapshot: ListSnapshot): ApplyResult {
    this.alive();
    const plan = this.lists.planSnapshot(snapshot);
    if (!plan.apply) return plan.result;
    this.db.transaction(() => this.lists.writeSnapshot(plan)).immediate();
    this.afterSwap();
    return plan.result;
  }

  /**
   * Write a snapshot in chunks (for chunked downloads: the event loop stays free
   * between chunks). The new list is invisible until commit(), which swaps it in
   * in one transaction; abort() (or a crash: cleaned at the next open) drops it.
   */
  beginSnapshot(scopeIn: string, versionIn: number): SnapshotWriter {
    this.alive();
    const scope = checkScope(scopeIn);
    const version = checkVersion(versionIn, 'version', scope);
    const from = this.lists.version(scope);
    if (this.lists.checkForward(scope, version)) return new SnapshotWriter(null, scope, version, from);
    const gen = this.db.transaction(() => this.lists.allocGen(scope, version)).immediate();
    const sink = {
      write: (entries: readonly unknown[], offset: number): number => {
        const valid = validateEntries(scope, entries, `entries[${offset}+]`, this.categories());
        this.db.transaction(() => this.lists.insertEntries(gen, scope, valid))();
        return valid.length;
      },
      commit: (): void => {
        this.db.transaction(() => this.lists.commitGen(gen, scope, version)).immediate();
        this.afterSwap();
      },
      abort: (): void => {
        this.lists.abandonGen(gen);
        this.collectGarbage();
      },
    };
    return new SnapshotWriter(sink, scope, version, from);
  }

  /**
   * Apply a delta in one transaction. toVersion below the version held →
   * store.list-rollback; equal → no-op; fromVersion ≠ version held →
   * store.list-version-gap (ask for a snapshot).
   */
  applyDelta(delta: ListDelta): ApplyResult {
    this.alive();
    const plan = this.lists.planDelta(delta);
    if (!plan.apply) return plan.result;
    this.db.transaction(() => this.lists.writeDelta(plan)).immediate();
    this.lists.reload();
    return plan.result;
  }

  /** After a generation was swapped in: refresh the cached versions, drop the old generation's tables, checkpoint the WAL. */
  private afterSwap(): void {
    this.lists.reload();
    this.collectGarbage();
    this.checkpoint();
  }

  /** Drop the tables of replaced or aborted generations (one transaction each); returns how many. */
  collectGarbage(): number {
    const gens = this.lists.garbageGens();
    for (const gen of gens) this.db.transaction(() => this.lists.dropGen(gen))();
    return gens.length;
  }

  /** Fold the WAL back into the database file (after a big list apply; keeps the WAL small). */
  checkpoint(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /**
   * Call when idle (no tap for a moment, e.g. 200 ms): checkpoints the WAL so
   * SQLite's automatic checkpoint (every 1000 pages) never lands on a tap's
   * commit. Cheap when there is nothing to do. Returns the WAL pages copied.
   */
  maintenance(): number {
    if (this.closed) return 0;
    const r = this.db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    return r[0]?.checkpointed ?? 0;
  }

  // ---- taps ----------------------------------------------------------------

  /** Everything `decide` needs about one token: its entries, stop-list hit, counters, marks. */
  readView(token: string): View {
    this.alive();
    const t = checkToken(token);
    const view: View = { transit: null, stop: null, schools: {}, counters: {}, marks: {}, listVersions: this.lists.versions() };
    this.lists.lookup(t, token, view);
    this.counters.read(t, view);
    if (this.usageCtx) {
      const fleet = this.usage.card(t);
      if (fleet) {
        const m = mergeUsage(view, fleet, this.usage.unseen(t), this.usageCtx);
        view.counters = m.counters;
        view.marks = m.marks;
      }
    }
    return view;
  }

  // ---- fleet usage (issue 10 item 4) -----------------------------------------

  /**
   * The tariff's route names and quota periods, which the usage records refer to.
   * Until it is set (no tariff yet), readView shows the device's own counters only.
   */
  setUsageContext(ctx: UsageContext | null): void {
    this.usageCtx = ctx;
  }

  /** Version, day and this device's watermark of the fleet usage held. */
  usageState(): UsageState {
    this.alive();
    return this.usage.state();
  }

  /**
   * Apply fleet usage in one transaction: a snapshot replaces every card, a
   * delta must start at the version held and count the same day
   * (store.list-version-gap: take a snapshot). An older version is
   * store.list-rollback, the same one a no-op (false).
   */
  applyUsage(u: UsageApply): boolean {
    this.alive();
    const p = this.usage.plan(u);
    if (!p) return false;
    this.db.transaction(() => this.usage.write(u, p)).immediate();
    return true;
  }

  /**
   * Commit a decision: the journal entry (next seq, no gaps), the counter
   * additions and the token's marks, in ONE transaction, fsynced before this
   * returns. Only then may the passenger be signalled.
   */
  commitTap(tap: Tap, decision: Decision, view: Pick<View, 'listVersions'>, keyVersion?: number): JournalEntry {
    this.alive();
    const row = this.journal.tapRow(checkToken(tap.card.token), tap, decision, view.listVersions, keyVersion);
    this.db.transaction(() => {
      this.journal.insert(row);
      this.counters.apply(row.token, decision.counterDelta);
      if (this.usageCtx) this.usage.recordTap(row.seq, row.token, decision.counterDelta.add);
    })();
    this.journal.committed(row.seq);
    return journalEntry(row);
  }

  /**
   * One tap end to end in ONE immediate transaction: read the token's view, let
   * `decide` (pure; the caller's rules, the store does not know them) decide,
   * commit the journal entry with its counters and marks. Durable before it
   * returns; signal the passenger only after.
   */
  decideAndCommit<D extends Decision>(tap: Tap, decide: (view: View, tap: Tap) => D, tokens?: readonly KeyedToken[]): { decision: D; entry: JournalEntry } {
    return this.db
      .transaction(() => {
        const k = this.matchToken(tap.card.token, tokens);
        const t = k.token === tap.card.token ? tap : { ...tap, card: { ...tap.card, token: k.token } };
        const view = this.readView(t.card.token);
        const decision = decide(view, t);
        const entry = this.commitTap(t, decision, view, k.keyVersion);
        return { decision, entry };
      })
      .immediate();
  }

  /**
   * Which of a card's tokens (one per key version the device holds, newest first) decides a tap: the first
   * one any list holds (transit, stop list, a school), else the newest. With one token (or none given) no
   * extra lookup is made. `token` is the tap's token, used when `tokens` is absent.
   */
  matchToken(token: string, tokens?: readonly KeyedToken[]): { token: string; keyVersion: number | undefined } {
    if (!tokens || tokens.length === 0) return { token, keyVersion: undefined };
    if (tokens.length > 1) {
      for (const k of tokens) if (this.lists.listed(checkToken(k.token))) return k;
    }
    return tokens[0]!;
  }

  /** Journal an event that is not a decision (result 'event'), e.g. a turnstile's "not-passed". */
  appendEvent(ev: JournalEvent): JournalEntry {
    this.alive();
    const row = this.journal.eventRow(checkToken(ev.token), ev, this.lists.versions());
    this.db.transaction(() => this.journal.insert(row))();
    this.journal.committed(row.seq);
    return journalEntry(row);
  }

  // ---- journal -------------------------------------------------------------

  /** Highest sequence number written (0 when empty). */
  lastSeq(): number {
    return this.journal.lastSeq();
  }

  /** Highest sequence number the server acknowledged. */
  ackedSeq(): number {
    return this.journal.ackedSeq();
  }

  /** Entries not yet acknowledged. */
  journalBacklog(): number {
    return this.journal.lastSeq() - this.journal.ackedSeq();
  }

  /** Up to `limit` entries with seq ≥ fromSeq, ascending (pruned ones are gone). */
  journalRange(fromSeq: number, limit = 500): JournalEntry[] {
    this.alive();
    return this.journal.range(fromSeq, limit);
  }

  /**
   * The server stored everything up to `seq`. Acks never move backwards (an
   * older ack is ignored); an ack beyond the last written seq is
   * store.journal-ack-invalid.
   */
  ackUpTo(seq: number): void {
    this.alive();
    this.journal.ack(seq);
  }

  /**
   * The server lost entries it had acknowledged (its registry restored from an older copy): move the ack
   * back to `seq` so they are sent again. Only ever backwards; `seq` beyond the journal is store.journal-ack-invalid.
   */
  rewindAck(seq: number): void {
    this.alive();
    this.journal.rewind(seq);
  }

  /** Delete acknowledged entries whose tap time is before `olderThanMs` (epoch ms); returns how many. */
  pruneAcked(olderThanMs: number | Date): number {
    this.alive();
    const ms = olderThanMs instanceof Date ? olderThanMs.getTime() : olderThanMs;
    return this.db.transaction(() => {
      const n = this.journal.prune(ms);
      this.usage.pruneBeforeJournal();
      return n;
    })();
  }

  /** Delete counters of periods before `period` ('YYYY-MM' keeps that month's and later). */
  pruneCounters(period: string): number {
    return this.counters.prune(period);
  }

  // ---- the file --------------------------------------------------------------

  /** PRAGMA integrity_check: 'ok' or the first problems. */
  integrityCheck(): string {
    const rows = this.db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('; ');
  }

  /** The durability settings of this connection (journal mode, synchronous) and the schema version. */
  settings(): StoreSettings {
    this.alive();
    return {
      journalMode: this.db.pragma('journal_mode', { simple: true }) as string,
      synchronous: this.db.pragma('synchronous', { simple: true }) as number,
      schema: this.db.pragma('user_version', { simple: true }) as number,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
