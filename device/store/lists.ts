import type Database from 'better-sqlite3';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import {
  TokenHex,
  scopeKind,
  type AnyEntry,
  type ListDelta,
  type ListSnapshot,
  type SchoolEntry,
  type StopEntry,
  type TransitEntry,
} from '../../protocol/lists.js';
import type { View } from '../../protocol/rules/types.js';
import { DEVICE_BUILT_IN_TABLE, type CategoryTable } from '../../protocol/categories.js';
import { decodeEntry, encodeEntry } from './codec.js';
import type { Meta } from './schema.js';
import { checkScope, checkVersion, tokenBlob, validateEntries } from './validate.js';

/**
 * The lists of the store: per scope a version and one visible generation of
 * entries. Each generation lives in its own table list_<gen> (token BLOB, data
 * TEXT in codec.ts form); a snapshot is written into a new generation and
 * swapped in, the old one becomes garbage and is dropped (collectGarbage).
 *
 * Methods here never open a transaction: the Store (store.ts) decides what runs
 * in one. "plan*" methods validate and tell whether anything is to be done;
 * "write*" and the generation steps run inside the Store's transaction.
 */

export interface ApplyResult {
  scope: string;
  applied: boolean; // false: the store already held this version
  fromVersion: number;
  version: number;
  entries: number; // entries in the snapshot / changes in the delta
}

/** What applySnapshot will write, or the no-op result. */
export type SnapshotPlan = { apply: false; result: ApplyResult } | { apply: true; result: ApplyResult; scope: string; version: number; entries: AnyEntry[] };

/** What applyDelta will write, or the no-op result. */
export type DeltaPlan =
  | { apply: false; result: ApplyResult }
  | { apply: true; result: ApplyResult; scope: string; held: number; version: number; upserts: AnyEntry[]; removes: Buffer[] };

const listTable = (gen: number): string => `list_${Math.trunc(gen)}`;

export class Lists {
  private versionMap = new Map<string, number>();
  private versionsObj: Record<string, number> = {};
  private lookups: Array<{ scope: string; get: Database.Statement }> = [];
  private readonly st: ReturnType<typeof prepare>;

  constructor(
    private readonly db: Database.Database,
    private readonly meta: Meta,
    /** The benefit categories the device's rules define (an entry naming another is refused). */
    private readonly categories: () => CategoryTable = () => DEVICE_BUILT_IN_TABLE,
  ) {
    this.st = prepare(db);
  }

  /** Re-read the versions and the visible generation of each scope (after any change). */
  reload(): void {
    this.versionMap.clear();
    this.lookups = [];
    for (const r of this.st.scopes.all() as { scope: string; version: number; gen: number }[]) {
      this.versionMap.set(r.scope, r.version);
      this.lookups.push({ scope: r.scope, get: this.db.prepare(`SELECT data FROM ${listTable(r.gen)} WHERE token = ?`).pluck() });
    }
    this.versionsObj = Object.fromEntries(this.versionMap);
  }

  /** The cached versions (not a copy: callers that hand it out copy it). */
  versions(): Record<string, number> {
    return this.versionsObj;
  }

  version(scope: string): number {
    return this.versionMap.get(scope) ?? 0;
  }

  status(): Array<{ scope: string; version: number; appliedMs: number }> {
    return (this.st.status.all() as Array<{ scope: string; version: number; appliedMs: number }>).map((r) => ({ ...r }));
  }

  entryCount(scope: string): number {
    const row = this.st.scopeRow.get(scope) as { gen: number } | undefined;
    return row
      ? (this.db
          .prepare(`SELECT count(*) FROM ${listTable(row.gen)}`)
          .pluck()
          .get() as number)
      : 0;
  }

  /** Fill the view's list part (transit, stop, schools) for one token. */
  lookup(t: Buffer, token: string, view: View): void {
    for (const { scope, get } of this.lookups) {
      const data = get.get(t) as string | undefined;
      if (data === undefined) continue;
      if (scope === 'transit') view.transit = decodeEntry('transit', token, data, this.categories()) as TransitEntry;
      else if (scope === 'stoplist') view.stop = decodeEntry('stoplist', token, data) as StopEntry;
      else view.schools[scope] = decodeEntry('school', token, data) as SchoolEntry;
    }
  }

  /** True when any list (transit, stop list, a school) holds this token. */
  listed(t: Buffer): boolean {
    for (const { get } of this.lookups) if (get.get(t) !== undefined) return true;
    return false;
  }

  /** Refuse an older version; tell whether this one is already held. */
  checkForward(scope: string, version: number): boolean {
    const cur = this.version(scope);
    if (version < cur) {
      throw new RcError(ErrorCode.ListRollback, `${scope}: version ${version} is older than the version held (${cur}); refused`, { scope, version, held: cur });
    }
    return version === cur;
  }

  // ---- whole snapshots -------------------------------------------------------

  /** Validate a snapshot (store.list-invalid, nothing changed) and tell whether it is new. */
  planSnapshot(snapshot: ListSnapshot): SnapshotPlan {
    const scope = checkScope(snapshot.scope);
    const version = checkVersion(snapshot.version, 'version', scope);
    if (!Array.isArray(snapshot.entries)) throw new RcError(ErrorCode.ListInvalid, `${scope}: entries must be an array`, { scope });
    const from = this.version(scope);
    if (this.checkForward(scope, version)) {
      return { apply: false, result: { scope, applied: false, fromVersion: from, version, entries: snapshot.entries.length } };
    }
    const entries = validateEntries(scope, snapshot.entries, 'entries', this.categories());
    return { apply: true, result: { scope, applied: true, fromVersion: from, version, entries: entries.length }, scope, version, entries };
  }

  /** Inside a transaction: write the planned snapshot into a new generation and swap it in. */
  writeSnapshot(plan: Extract<SnapshotPlan, { apply: true }>): void {
    const { scope, version } = plan;
    if (this.checkForward(scope, version)) return;
    const gen = this.allocGen(scope, version);
    this.insertEntries(gen, scope, plan.entries);
    this.indexGen(gen, scope);
    this.swapIn(scope, version, gen);
  }

  // ---- chunked snapshots (SnapshotWriter) ------------------------------------

  /** Inside a transaction: a new, invisible generation for a chunked snapshot. */
  allocGen(scope: string, version: number): number {
    const gen = this.meta.get('next_gen');
    this.meta.set('next_gen', gen + 1);
    this.st.newGen.run(gen, scope, version);
    // no index yet: bulk inserts append in rowid order (indexGen builds it once)
    this.db.exec(`CREATE TABLE ${listTable(gen)} (token BLOB NOT NULL, data TEXT NOT NULL)`);
    return gen;
  }

  /** Inside a transaction: append validated entries to a generation. */
  insertEntries(gen: number, scope: string, entries: readonly AnyEntry[], upsert = false): void {
    const kind = scopeKind(scope);
    const put = this.db.prepare(
      upsert
        ? `INSERT INTO ${listTable(gen)} (token, data) VALUES (?, ?) ON CONFLICT(token) DO UPDATE SET data = excluded.data`
        : `INSERT INTO ${listTable(gen)} (token, data) VALUES (?, ?)`,
    );
    const cats = this.categories();
    for (const e of entries) put.run(tokenBlob(e.token), encodeEntry(kind, e, cats));
  }

  /** Inside a transaction: make a fully written generation the visible one (refused if the version was applied meanwhile). */
  commitGen(gen: number, scope: string, version: number): void {
    if (this.checkForward(scope, version)) throw new RcError(ErrorCode.ListRollback, `${scope}: version ${version} was applied meanwhile`, { scope, version });
    this.indexGen(gen, scope);
    this.swapIn(scope, version, gen);
  }

  /** Mark a generation for collectGarbage (an aborted download). */
  abandonGen(gen: number): void {
    this.st.setGenState.run('garbage', gen);
  }

  /** Generations left 'staging' by a process that died mid-download are garbage. */
  abandonStaging(): void {
    this.st.abandonStaging.run();
  }

  /** Generations to drop. */
  garbageGens(): number[] {
    return (this.st.garbageGens.all() as { gen: number }[]).map((r) => r.gen);
  }

  /** Inside a transaction: drop one generation's table and row. */
  dropGen(gen: number): void {
    this.db.exec(`DROP TABLE IF EXISTS ${listTable(gen)}`);
    this.st.dropGen.run(gen);
  }

  // ---- deltas -----------------------------------------------------------------

  /**
   * Validate a delta. toVersion below the version held → store.list-rollback;
   * equal → no-op; fromVersion ≠ version held → store.list-version-gap.
   */
  planDelta(delta: ListDelta): DeltaPlan {
    const scope = checkScope(delta.scope);
    const to = checkVersion(delta.toVersion, 'toVersion', scope);
    const fromV = delta.fromVersion;
    if (typeof fromV !== 'number' || !Number.isSafeInteger(fromV) || fromV < 0 || fromV >= to) {
      throw new RcError(ErrorCode.ListInvalid, `${scope}: fromVersion must be an integer below toVersion`, {
        scope,
        fromVersion: String(fromV),
        toVersion: to,
      });
    }
    const cur = this.version(scope);
    const n = (delta.upserts?.length ?? 0) + (delta.removes?.length ?? 0);
    const result: ApplyResult = { scope, applied: false, fromVersion: cur, version: to, entries: n };
    if (this.checkForward(scope, to)) return { apply: false, result };
    if (fromV !== cur) {
      throw new RcError(ErrorCode.ListVersionGap, `${scope}: delta starts at version ${fromV} but the store holds ${cur}; a snapshot is needed`, {
        scope,
        fromVersion: fromV,
        held: cur,
      });
    }
    if (!Array.isArray(delta.upserts) || !Array.isArray(delta.removes)) {
      throw new RcError(ErrorCode.ListInvalid, `${scope}: upserts and removes must be arrays`, { scope });
    }
    const upserts = validateEntries(scope, delta.upserts, 'upserts', this.categories());
    const removes = delta.removes.map((t, i) => {
      if (!TokenHex.safeParse(t).success) {
        throw new RcError(ErrorCode.ListInvalid, `${scope}: removes.${i}: token must be 32 lower-case hex digits; nothing applied`, { scope, index: i });
      }
      return tokenBlob(t);
    });
    return { apply: true, result: { ...result, applied: true }, scope, held: cur, version: to, upserts, removes };
  }

  /** Inside a transaction: apply the planned delta to the visible generation (in place). */
  writeDelta(plan: Extract<DeltaPlan, { apply: true }>): void {
    const { scope, held, version } = plan;
    const row = this.st.scopeRow.get(scope) as { gen: number; version: number } | undefined;
    if ((row?.version ?? 0) !== held) throw new RcError(ErrorCode.ListVersionGap, `${scope}: version changed meanwhile`, { scope });
    let gen = row?.gen;
    if (gen === undefined) {
      gen = this.allocGen(scope, version);
      this.indexGen(gen, scope);
      this.st.setGenState.run('active', gen);
    }
    const del = this.db.prepare(`DELETE FROM ${listTable(gen)} WHERE token = ?`);
    for (const t of plan.removes) del.run(t);
    this.insertEntries(gen, scope, plan.upserts, true);
    this.st.upsertScope.run(scope, version, gen, Date.now());
  }

  // ---- generation steps -------------------------------------------------------

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

  /** Make `gen` the visible generation of `scope`; the old one becomes garbage. */
  private swapIn(scope: string, version: number, gen: number): void {
    const old = this.st.scopeRow.get(scope) as { gen: number } | undefined;
    this.st.upsertScope.run(scope, version, gen, Date.now());
    this.st.setGenState.run('active', gen);
    if (old) this.st.setGenState.run('garbage', old.gen);
  }
}

function prepare(db: Database.Database) {
  return {
    scopes: db.prepare('SELECT scope, version, gen FROM scopes'),
    status: db.prepare('SELECT scope, version, applied_ms AS appliedMs FROM scopes ORDER BY scope'),
    scopeRow: db.prepare('SELECT scope, version, gen FROM scopes WHERE scope = ?'),
    upsertScope: db.prepare(
      'INSERT INTO scopes (scope, version, gen, applied_ms) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT(scope) DO UPDATE SET version = excluded.version, gen = excluded.gen, applied_ms = excluded.applied_ms',
    ),
    newGen: db.prepare(`INSERT INTO gens (gen, scope, version, state) VALUES (?, ?, ?, 'staging')`),
    setGenState: db.prepare('UPDATE gens SET state = ? WHERE gen = ?'),
    abandonStaging: db.prepare(`UPDATE gens SET state = 'garbage' WHERE state = 'staging'`),
    garbageGens: db.prepare(`SELECT gen FROM gens WHERE state = 'garbage'`),
    dropGen: db.prepare('DELETE FROM gens WHERE gen = ?'),
  };
}

/** The narrow side of the Store a SnapshotWriter needs (built by Store.beginSnapshot; each step owns its transaction). */
export interface GenerationSink {
  /** Validate and append a chunk; returns how many entries it held. */
  write(entries: readonly unknown[], offset: number): number;
  /** Index and swap the generation in. */
  commit(): void;
  /** Drop the generation. */
  abort(): void;
}

/** A snapshot being written chunk by chunk (see Store.beginSnapshot). */
export class SnapshotWriter {
  private count = 0;
  private done = false;
  constructor(
    private readonly sink: GenerationSink | null, // null: version already held, everything is a no-op
    readonly scope: string,
    readonly version: number,
    readonly fromVersion: number,
  ) {}

  /** Validate and write a chunk (its own small transaction, invisible to readers). Invalid → store.list-invalid and the writer is aborted. */
  add(entries: readonly unknown[]): void {
    if (this.done) throw new RcError(ErrorCode.ListInvalid, `${this.scope}: snapshot writer already finished`, { scope: this.scope });
    if (this.sink === null) return;
    try {
      this.count += this.sink.write(entries, this.count);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Swap the new list in (one transaction). */
  commit(): ApplyResult {
    if (this.done) throw new RcError(ErrorCode.ListInvalid, `${this.scope}: snapshot writer already finished`, { scope: this.scope });
    this.done = true;
    if (this.sink === null) return { scope: this.scope, applied: false, fromVersion: this.fromVersion, version: this.version, entries: this.count };
    try {
      this.sink.commit();
    } catch (e) {
      this.sink.abort();
      throw e;
    }
    return { scope: this.scope, applied: true, fromVersion: this.fromVersion, version: this.version, entries: this.count };
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.sink !== null) this.sink.abort();
  }
}
