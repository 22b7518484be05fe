import Database from 'better-sqlite3';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import {
  ScopeName,
  TokenHex,
  entrySchemaFor,
  scopeKind,
  type AnyEntry,
  type ListDelta,
  type ListSnapshot,
  type SchoolEntry,
  type StopEntry,
  type TransitEntry,
} from '../../protocol/lists.js';
import type { Decision, Direction, Tap, TokenMarks, View } from '../rules/types.js';
import { decodeEntry, encodeEntry } from './codec.js';
import { CURRENT_STORE_SCHEMA, MIGRATIONS } from './schema.js';

/**
 * The device's local store (SQLite through better-sqlite3): lists per scope
 * with versions, counters and marks per token, and the tap journal.
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
 *   processTap(tap, cfg) in ./tap.ts    → readView + decide + commitTap
 *   journalRange(fromSeq, limit)        → entries with seq ≥ fromSeq, ascending
 *   ackUpTo(seq) / ackedSeq() / lastSeq() / journalBacklog()
 *   rewindAck(seq)                      → ack moved back (the server lost acknowledged entries)
 *   pruneAcked(olderThanMs)             → deletes acknowledged entries older than that
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
}

export interface ApplyResult {
  scope: string;
  applied: boolean; // false: the store already held this version
  fromVersion: number;
  version: number;
  entries: number; // entries in the snapshot / changes in the delta
}

/** One decision in the journal, as the sync client uploads it. Never holds a PAN. */
export interface JournalEntry {
  seq: number;
  time: string; // ISO-8601 UTC, the wall time of the tap
  effectiveTime: string; // ISO-8601 UTC, the guarded time the rules used
  device: string;
  token: string; // 32 hex
  kind: string; // bus | turnstile | canteen
  direction: Direction | null;
  reader: string | null;
  result: 'allow' | 'deny' | 'event';
  reason: string;
  fareKopecks: number;
  benefit: string | null;
  listVersions: Record<string, number>;
  route?: string;
  vehicle?: string;
  meal?: string;
  flags: string[];
}

/** An event for the journal that is not a decision (e.g. turnstile "not-passed"). */
export interface JournalEvent {
  wallTime: number;
  token: string;
  kind: string;
  reason: string;
  direction?: Direction | null;
  reader?: string | null;
  flags?: string[];
}

interface JournalRow {
  seq: number;
  time_ms: number;
  eff_ms: number;
  device: string;
  token: Buffer;
  kind: string;
  direction: string | null;
  reader: string | null;
  result: string;
  reason: string;
  fare: number;
  benefit: string | null;
  lists: string;
  extra: string;
}

const tokenBlob = (hex: string): Buffer => Buffer.from(hex, 'hex');
const listTable = (gen: number): string => `list_${Math.trunc(gen)}`;
const TOKEN_RE = /^[0-9a-f]{32}$/;

function checkToken(token: string): Buffer {
  if (!TOKEN_RE.test(token)) throw new RcError(ErrorCode.InputInvalid, 'token must be 32 lower-case hex digits', { length: token.length });
  return tokenBlob(token);
}

function checkScope(scope: unknown): string {
  const r = ScopeName.safeParse(scope);
  if (!r.success) throw new RcError(ErrorCode.ListUnknownScope, `unknown list scope "${String(scope).slice(0, 64)}"`, { scope: String(scope).slice(0, 64) });
  return r.data;
}

function checkVersion(v: unknown, what: string, scope: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new RcError(ErrorCode.ListInvalid, `${scope}: ${what} must be a positive integer`, { scope, [what]: String(v) });
  }
  return v;
}

/**
 * Validate entries of a scope with the protocol schemas; throw store.list-invalid
 * naming the first bad entry (index, token prefix, field path, message).
 */
export function validateEntries(scope: string, entries: readonly unknown[], label = 'entries'): AnyEntry[] {
  const schema = entrySchemaFor(scope);
  const out: AnyEntry[] = new Array<AnyEntry>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const r = schema.safeParse(entries[i]);
    if (!r.success) {
      const iss = r.error.issues[0];
      const path = [label, i, ...(iss?.path ?? [])].map(String).join('.');
      throw new RcError(ErrorCode.ListInvalid, `${scope}: ${path}: ${iss?.message ?? 'invalid'}; nothing applied`, { scope, index: i, path });
    }
    out[i] = r.data;
  }
  return out;
}


export class Store {
  readonly db: Database.Database;
  readonly deviceId: string;
  readonly path: string;
  private seq: number;
  private versions = new Map<string, number>();
  private versionsObj: Record<string, number> = {};
  private lookups: Array<{ scope: string; get: Database.Statement }> = [];
  private closed = false;
  private readonly st: ReturnType<Store['prepare']>;

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
    this.st = this.prepare();
    // the last seq is the journal's highest, or (everything pruned) the one saved by pruneAcked
    const floor = Number((this.st.getMeta.get('journal_seq') as { value: number }).value);
    this.seq = Math.max(floor, (db.prepare('SELECT max(seq) FROM journal').pluck().get() as number | null) ?? 0);
    // generations left 'staging' by a process that died mid-download are garbage now
    db.prepare(`UPDATE gens SET state = 'garbage' WHERE state = 'staging'`).run();
    this.reloadVersions();
    this.collectGarbage();
  }

  private prepare() {
    const db = this.db;
    return {
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('UPDATE meta SET value = ? WHERE key = ?'),
      scopes: db.prepare('SELECT scope, version, gen FROM scopes'),
      scopeRow: db.prepare('SELECT scope, version, gen FROM scopes WHERE scope = ?'),
      upsertScope: db.prepare(
        'INSERT INTO scopes (scope, version, gen, applied_ms) VALUES (?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET version = excluded.version, gen = excluded.gen, applied_ms = excluded.applied_ms',
      ),
      newGen: db.prepare(`INSERT INTO gens (gen, scope, version, state) VALUES (?, ?, ?, 'staging')`),
      setGenState: db.prepare('UPDATE gens SET state = ? WHERE gen = ?'),
      garbageGens: db.prepare(`SELECT gen FROM gens WHERE state = 'garbage'`),
      dropGen: db.prepare('DELETE FROM gens WHERE gen = ?'),
      viewCounters: db.prepare('SELECT name, period, value FROM counters WHERE token = ?'),
      viewMarks: db.prepare('SELECT data FROM marks WHERE token = ?'),
      addCounter: db.prepare(
        'INSERT INTO counters (token, name, period, value) VALUES (?, ?, ?, ?) ON CONFLICT(token, name, period) DO UPDATE SET value = value + excluded.value',
      ),
      putMarks: db.prepare('INSERT OR REPLACE INTO marks (token, data) VALUES (?, ?)'),
      insJournal: db.prepare(
        'INSERT INTO journal (seq, time_ms, eff_ms, device, token, kind, direction, reader, result, reason, fare, benefit, lists, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      journalFrom: db.prepare('SELECT * FROM journal WHERE seq >= ? ORDER BY seq LIMIT ?'),
      pruneJournal: db.prepare('DELETE FROM journal WHERE seq <= ? AND time_ms < ?'),
      pruneCounters: db.prepare('DELETE FROM counters WHERE period < ?'),
    };
  }

  private reloadVersions(): void {
    this.versions.clear();
    this.lookups = [];
    for (const r of this.st.scopes.all() as { scope: string; version: number; gen: number }[]) {
      this.versions.set(r.scope, r.version);
      this.lookups.push({ scope: r.scope, get: this.db.prepare(`SELECT data FROM ${listTable(r.gen)} WHERE token = ?`).pluck() });
    }
    this.versionsObj = Object.fromEntries(this.versions);
  }

  private alive(): void {
    if (this.closed) throw new RcError(ErrorCode.StoreOpenFailed, `store ${this.path} is closed`, { file: this.path });
  }

  // ---- lists -------------------------------------------------------------

  /** Version held per scope (scopes never applied are absent, i.e. version 0). */
  listVersions(): Record<string, number> {
    return { ...this.versionsObj };
  }

  /** Per scope: version and when it was applied (epoch ms), for status reports (list age). */
  listStatus(): Array<{ scope: string; version: number; appliedMs: number }> {
    return (this.db.prepare('SELECT scope, version, applied_ms AS appliedMs FROM scopes ORDER BY scope').all() as Array<{ scope: string; version: number; appliedMs: number }>).map((r) => ({ ...r }));
  }

  listVersion(scope: string): number {
    return this.versions.get(scope) ?? 0;
  }

  /** Number of entries visible in a scope. */
  entryCount(scope: string): number {
    const row = this.st.scopeRow.get(scope) as { gen: number } | undefined;
    return row ? (this.db.prepare(`SELECT count(*) FROM ${listTable(row.gen)}`).pluck().get() as number) : 0;
  }

  /** Refuse an older version; tell whether this one is already held. */
  private checkForward(scope: string, version: number): boolean {
    const cur = this.listVersion(scope);
    if (version < cur) {
      throw new RcError(ErrorCode.ListRollback, `${scope}: version ${version} is older than the version held (${cur}); refused`, { scope, version, held: cur });
    }
    return version === cur;
  }

  /** A new generation: its table without index (bulk inserts append in rowid order). */
  private allocGen(scope: string, version: number): number {
    const gen = Number((this.st.getMeta.get('next_gen') as { value: number }).value);
    this.st.setMeta.run(gen + 1, 'next_gen');
    this.st.newGen.run(gen, scope, version);
    this.db.exec(`CREATE TABLE ${listTable(gen)} (token BLOB NOT NULL, data TEXT NOT NULL)`);
    return gen;
  }

  /** The unique token index, built once after a bulk load (a sort, not 1M random B-tree inserts). */
  private indexGen(gen: number, scope: string): void {
    try {
      this.db.exec(`CREATE UNIQUE INDEX ${listTable(gen)}_token ON ${listTable(gen)} (token)`);
    } catch (e) {
      if ((e as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new RcError(ErrorCode.ListInvalid, `${scope}: the list holds the same token twice; nothing applied`, { scope });
      }
      throw e;
    }
  }

  private insertEntries(gen: number, scope: string, entries: readonly AnyEntry[], upsert = false): void {
    const kind = scopeKind(scope);
    const put = this.db.prepare(
      upsert
        ? `INSERT INTO ${listTable(gen)} (token, data) VALUES (?, ?) ON CONFLICT(token) DO UPDATE SET data = excluded.data`
        : `INSERT INTO ${listTable(gen)} (token, data) VALUES (?, ?)`,
    );
    for (const e of entries) put.run(tokenBlob(e.token), encodeEntry(kind, e));
  }

  /** Make `gen` the visible generation of `scope` (inside a transaction). */
  private swapIn(scope: string, version: number, gen: number): void {
    const old = this.st.scopeRow.get(scope) as { gen: number } | undefined;
    this.st.upsertScope.run(scope, version, gen, Date.now());
    this.st.setGenState.run('active', gen);
    if (old) this.st.setGenState.run('garbage', old.gen);
  }

  /**
   * Replace a scope's whole list, in one transaction: a reader sees the old list
   * or the new one, never a mix. Entries are validated first (store.list-invalid,
   * nothing changed). Old entries are deleted afterwards (collectGarbage).
   */
  applySnapshot(snapshot: ListSnapshot): ApplyResult {
    this.alive();
    const scope = checkScope(snapshot.scope);
    const version = checkVersion(snapshot.version, 'version', scope);
    if (!Array.isArray(snapshot.entries)) throw new RcError(ErrorCode.ListInvalid, `${scope}: entries must be an array`, { scope });
    const from = this.listVersion(scope);
    if (this.checkForward(scope, version)) return { scope, applied: false, fromVersion: from, version, entries: snapshot.entries.length };
    const entries = validateEntries(scope, snapshot.entries);
    this.db
      .transaction(() => {
        if (this.checkForward(scope, version)) return;
        const gen = this.allocGen(scope, version);
        this.insertEntries(gen, scope, entries);
        this.indexGen(gen, scope);
        this.swapIn(scope, version, gen);
      })
      .immediate();
    this.afterSwap();
    return { scope, applied: true, fromVersion: from, version, entries: entries.length };
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
    const from = this.listVersion(scope);
    if (this.checkForward(scope, version)) return new SnapshotWriter(this, scope, version, from, null);
    const gen = this.db.transaction(() => this.allocGen(scope, version)).immediate();
    return new SnapshotWriter(this, scope, version, from, gen);
  }

  /** @internal used by SnapshotWriter */
  _writeChunk(gen: number, scope: string, entries: readonly unknown[], offset: number): number {
    const valid = validateEntries(scope, entries, `entries[${offset}+]`);
    this.db.transaction(() => this.insertEntries(gen, scope, valid))();
    return valid.length;
  }

  /** @internal used by SnapshotWriter */
  /** After a generation was swapped in: refresh the cached versions, drop the old generation's tables, checkpoint the WAL. */
  private afterSwap(): void {
    this.reloadVersions();
    this.collectGarbage();
    this.checkpoint();
  }

  _commitGen(gen: number, scope: string, version: number): void {
    this.db
      .transaction(() => {
        if (this.checkForward(scope, version)) throw new RcError(ErrorCode.ListRollback, `${scope}: version ${version} was applied meanwhile`, { scope, version });
        this.indexGen(gen, scope);
        this.swapIn(scope, version, gen);
      })
      .immediate();
    this.afterSwap();
  }

  /** @internal used by SnapshotWriter */
  _abortGen(gen: number): void {
    this.st.setGenState.run('garbage', gen);
    this.collectGarbage();
  }

  /**
   * Apply a delta in one transaction. toVersion below the version held →
   * store.list-rollback; equal → no-op; fromVersion ≠ version held →
   * store.list-version-gap (ask for a snapshot).
   */
  applyDelta(delta: ListDelta): ApplyResult {
    this.alive();
    const scope = checkScope(delta.scope);
    const to = checkVersion(delta.toVersion, 'toVersion', scope);
    const fromV = delta.fromVersion;
    if (typeof fromV !== 'number' || !Number.isSafeInteger(fromV) || fromV < 0 || fromV >= to) {
      throw new RcError(ErrorCode.ListInvalid, `${scope}: fromVersion must be an integer below toVersion`, { scope, fromVersion: String(fromV), toVersion: to });
    }
    const cur = this.listVersion(scope);
    const n = (delta.upserts?.length ?? 0) + (delta.removes?.length ?? 0);
    if (this.checkForward(scope, to)) return { scope, applied: false, fromVersion: cur, version: to, entries: n };
    if (fromV !== cur) {
      throw new RcError(ErrorCode.ListVersionGap, `${scope}: delta starts at version ${fromV} but the store holds ${cur}; a snapshot is needed`, {
        scope,
        fromVersion: fromV,
        held: cur,
      });
    }
    if (!Array.isArray(delta.upserts) || !Array.isArray(delta.removes)) throw new RcError(ErrorCode.ListInvalid, `${scope}: upserts and removes must be arrays`, { scope });
    const upserts = validateEntries(scope, delta.upserts, 'upserts');
    const removes = delta.removes.map((t, i) => {
      if (!TokenHex.safeParse(t).success) throw new RcError(ErrorCode.ListInvalid, `${scope}: removes.${i}: token must be 32 lower-case hex digits; nothing applied`, { scope, index: i });
      return tokenBlob(t);
    });
    this.db
      .transaction(() => {
        const row = this.st.scopeRow.get(scope) as { gen: number; version: number } | undefined;
        if ((row?.version ?? 0) !== cur) throw new RcError(ErrorCode.ListVersionGap, `${scope}: version changed meanwhile`, { scope });
        let gen = row?.gen;
        if (gen === undefined) {
          gen = this.allocGen(scope, to);
          this.indexGen(gen, scope);
          this.st.setGenState.run('active', gen);
        }
        const del = this.db.prepare(`DELETE FROM ${listTable(gen)} WHERE token = ?`);
        for (const t of removes) del.run(t);
        this.insertEntries(gen, scope, upserts, true);
        this.st.upsertScope.run(scope, to, gen, Date.now());
      })
      .immediate();
    this.reloadVersions();
    return { scope, applied: true, fromVersion: cur, version: to, entries: n };
  }

  /** Drop the tables of replaced or aborted generations; returns how many. */
  collectGarbage(): number {
    const gens = this.st.garbageGens.all() as { gen: number }[];
    for (const { gen } of gens) {
      this.db.transaction(() => {
        this.db.exec(`DROP TABLE IF EXISTS ${listTable(gen)}`);
        this.st.dropGen.run(gen);
      })();
    }
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
    const view: View = { transit: null, stop: null, schools: {}, counters: {}, marks: {}, listVersions: this.versionsObj };
    for (const { scope, get } of this.lookups) {
      const data = get.get(t) as string | undefined;
      if (data === undefined) continue;
      if (scope === 'transit') view.transit = decodeEntry('transit', token, data) as TransitEntry;
      else if (scope === 'stoplist') view.stop = decodeEntry('stoplist', token, data) as StopEntry;
      else view.schools[scope] = decodeEntry('school', token, data) as SchoolEntry;
    }
    for (const r of this.st.viewCounters.all(t) as { name: string; period: string; value: number }[]) view.counters[`${r.name}@${r.period}`] = r.value;
    const m = this.st.viewMarks.get(t) as { data: string } | undefined;
    if (m) view.marks = JSON.parse(m.data) as TokenMarks;
    return view;
  }

  /**
   * Commit a decision: the journal entry (next seq, no gaps), the counter
   * additions and the token's marks, in ONE transaction, fsynced before this
   * returns. Only then may the passenger be signalled.
   */
  commitTap(tap: Tap, decision: Decision, view: Pick<View, 'listVersions'>): JournalEntry {
    this.alive();
    const t = checkToken(tap.card.token);
    const seq = this.seq + 1;
    const extra: Record<string, unknown> = { flags: decision.flags };
    if (decision.route !== undefined) extra.route = decision.route;
    if (decision.vehicle !== undefined) extra.vehicle = decision.vehicle;
    if (decision.meal !== undefined) extra.meal = decision.meal;
    const lists = JSON.stringify(view.listVersions);
    const direction = decision.direction ?? tap.direction ?? null;
    this.db.transaction(() => {
      this.st.insJournal.run(
        seq,
        Math.trunc(tap.wallTime),
        Math.trunc(decision.effectiveTime),
        this.deviceId,
        t,
        decision.kind,
        direction,
        tap.reader ?? null,
        decision.result,
        decision.reason,
        decision.fareKopecks,
        decision.benefit,
        lists,
        JSON.stringify(extra),
      );
      for (const a of decision.counterDelta.add) this.st.addCounter.run(t, a.name, a.period, a.by);
      this.st.putMarks.run(t, JSON.stringify(decision.counterDelta.marks));
    })();
    this.seq = seq;
    return {
      seq,
      time: new Date(tap.wallTime).toISOString(),
      effectiveTime: new Date(decision.effectiveTime).toISOString(),
      device: this.deviceId,
      token: tap.card.token,
      kind: decision.kind,
      direction,
      reader: tap.reader ?? null,
      result: decision.result,
      reason: decision.reason,
      fareKopecks: decision.fareKopecks,
      benefit: decision.benefit,
      listVersions: { ...view.listVersions },
      ...(decision.route !== undefined ? { route: decision.route } : {}),
      ...(decision.vehicle !== undefined ? { vehicle: decision.vehicle } : {}),
      ...(decision.meal !== undefined ? { meal: decision.meal } : {}),
      flags: [...decision.flags],
    };
  }

  /** Journal an event that is not a decision (result 'event'), e.g. a turnstile's "not-passed". */
  appendEvent(ev: JournalEvent): JournalEntry {
    this.alive();
    const t = checkToken(ev.token);
    const seq = this.seq + 1;
    this.db.transaction(() => {
      this.st.insJournal.run(seq, Math.trunc(ev.wallTime), Math.trunc(ev.wallTime), this.deviceId, t, ev.kind, ev.direction ?? null, ev.reader ?? null, 'event', ev.reason, 0, null, JSON.stringify(this.versionsObj), JSON.stringify({ flags: ev.flags ?? [] }));
    })();
    this.seq = seq;
    return this.journalRange(seq, 1)[0]!;
  }

  // ---- journal -------------------------------------------------------------

  /** Highest sequence number written (0 when empty). */
  lastSeq(): number {
    return this.seq;
  }

  /** Highest sequence number the server acknowledged. */
  ackedSeq(): number {
    return Number((this.st.getMeta.get('acked_seq') as { value: number }).value);
  }

  /** Entries not yet acknowledged. */
  journalBacklog(): number {
    return this.seq - this.ackedSeq();
  }

  /** Up to `limit` entries with seq ≥ fromSeq, ascending (pruned ones are gone). */
  journalRange(fromSeq: number, limit = 500): JournalEntry[] {
    this.alive();
    return (this.st.journalFrom.all(fromSeq, limit) as JournalRow[]).map(rowToEntry);
  }

  /**
   * The server stored everything up to `seq`. Acks never move backwards (an
   * older ack is ignored); an ack beyond the last written seq is
   * store.journal-ack-invalid.
   */
  ackUpTo(seq: number): void {
    this.alive();
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > this.seq) {
      throw new RcError(ErrorCode.JournalAckInvalid, `ack of seq ${String(seq)} but the journal ends at ${this.seq}`, { seq: String(seq), lastSeq: this.seq });
    }
    if (seq > this.ackedSeq()) this.st.setMeta.run(seq, 'acked_seq');
  }

  /**
   * The server lost entries it had acknowledged (its registry restored from an older copy): move the ack
   * back to `seq` so they are sent again. Only ever backwards; `seq` beyond the journal is store.journal-ack-invalid.
   */
  rewindAck(seq: number): void {
    this.alive();
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > this.seq) {
      const context = { seq: String(seq), lastSeq: this.seq };
      throw new RcError(ErrorCode.JournalAckInvalid, `rewind to seq ${String(seq)} but the journal ends at ${this.seq}`, context);
    }
    if (seq < this.ackedSeq()) this.st.setMeta.run(seq, 'acked_seq');
  }

  /** Delete acknowledged entries whose tap time is before `olderThanMs` (epoch ms); returns how many. */
  pruneAcked(olderThanMs: number | Date): number {
    this.alive();
    const ms = olderThanMs instanceof Date ? olderThanMs.getTime() : olderThanMs;
    return this.db.transaction(() => {
      // remember the last seq in case this empties the journal (seq numbers are never reused)
      this.st.setMeta.run(this.seq, 'journal_seq');
      return this.st.pruneJournal.run(this.ackedSeq(), ms).changes;
    })();
  }

  /** Delete counters of periods before `period` ('YYYY-MM' keeps that month's and later). */
  pruneCounters(period: string): number {
    return this.st.pruneCounters.run(period).changes;
  }

  /** PRAGMA integrity_check: 'ok' or the first problems. */
  integrityCheck(): string {
    const rows = this.db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('; ');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

function rowToEntry(r: JournalRow): JournalEntry {
  const extra = JSON.parse(r.extra) as { flags?: string[]; route?: string; vehicle?: string; meal?: string };
  return {
    seq: r.seq,
    time: new Date(r.time_ms).toISOString(),
    effectiveTime: new Date(r.eff_ms).toISOString(),
    device: r.device,
    token: r.token.toString('hex'),
    kind: r.kind,
    direction: r.direction as Direction | null,
    reader: r.reader,
    result: r.result as JournalEntry['result'],
    reason: r.reason,
    fareKopecks: r.fare,
    benefit: r.benefit,
    listVersions: JSON.parse(r.lists) as Record<string, number>,
    ...(extra.route !== undefined ? { route: extra.route } : {}),
    ...(extra.vehicle !== undefined ? { vehicle: extra.vehicle } : {}),
    ...(extra.meal !== undefined ? { meal: extra.meal } : {}),
    flags: extra.flags ?? [],
  };
}

/** A snapshot being written chunk by chunk (see Store.beginSnapshot). */
export class SnapshotWriter {
  private count = 0;
  private done = false;
  constructor(
    private readonly store: Store,
    readonly scope: string,
    readonly version: number,
    readonly fromVersion: number,
    private readonly gen: number | null, // null: version already held, everything is a no-op
  ) {}

  /** Validate and write a chunk (its own small transaction, invisible to readers). Invalid → store.list-invalid and the writer is aborted. */
  add(entries: readonly unknown[]): void {
    if (this.done) throw new RcError(ErrorCode.ListInvalid, `${this.scope}: snapshot writer already finished`, { scope: this.scope });
    if (this.gen === null) return;
    try {
      this.count += this.store._writeChunk(this.gen, this.scope, entries, this.count);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Swap the new list in (one transaction). */
  commit(): ApplyResult {
    if (this.done) throw new RcError(ErrorCode.ListInvalid, `${this.scope}: snapshot writer already finished`, { scope: this.scope });
    this.done = true;
    if (this.gen === null) return { scope: this.scope, applied: false, fromVersion: this.fromVersion, version: this.version, entries: this.count };
    try {
      this.store._commitGen(this.gen, this.scope, this.version);
    } catch (e) {
      this.store._abortGen(this.gen);
      throw e;
    }
    return { scope: this.scope, applied: true, fromVersion: this.fromVersion, version: this.version, entries: this.count };
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.gen !== null) this.store._abortGen(this.gen);
  }
}
