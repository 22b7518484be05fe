import type { KeyObject } from 'node:crypto';
import type { Logger } from '../protocol/log.js';
import type { Scope } from '../protocol/lists.js';
import { RECORD_SIZE } from '../protocol/wire/codec.js';
import { encodeChunk, sealConfig, sealDelta, sealManifest, splitChunks } from '../protocol/wire/chunking.js';
import { sha256Hex } from '../protocol/wire/envelope.js';
import { CHUNK_RECORDS, MAX_DELTA_RECORDS, type ChunkRef, type DeltaRef } from '../protocol/wire/messages.js';
import { topics } from '../protocol/wire/topics.js';
import { ALL_TOKENS, Materializer, type Dirty } from './materialize.js';
import { dialectOf } from './db/sql.js';
import type { Db } from './registry.js';
import { assignWireIds } from './categories.js';
import { yieldToLoop } from './import.js';

/** Where the publisher sends messages (an MQTT client in production, a recorder in tests). */
export interface Transport {
  publish(topic: string, payload: Buffer, retain: boolean): Promise<void>;
}

export interface PublisherOptions {
  manifestTtlMs: number; // how long a manifest stays valid (re-sealed well before)
  deltaRetentionMs: number; // deltas older than this are dropped; devices take a snapshot
  chunkRecords: number;
  maxDeltaRecords: number; // a bigger change is published as a snapshot only
}

type Sealed = ReturnType<typeof sealDelta>;

/** Above this many changed tokens a scope is recomputed in one ordered pass. */
const FULL_SCAN = 20_000;
/** Tokens per page (and per transaction) of a staged commit: a few milliseconds each. */
const PAGE = 2_000;
const REWRITING_KEY = 'lists.rewriting';
/** A snapshot chunk, written again when a version is rebuilt. */
const UPSERT_CHUNK = `INSERT INTO chunks(scope, version, n, records, sha256, payload) VALUES (?,?,?,?,?,?)
  ON CONFLICT(scope, version, n) DO UPDATE SET records = excluded.records, sha256 = excluded.sha256, payload = excluded.payload`;

/**
 * Run one short transaction of a staged import or commit without its own fsync (synchronous=NORMAL, WAL):
 * a crash keeps it or drops it whole, which the staging and the recovery at start are built for; the next
 * durable commit (the step that ends the import, or any journal commit meanwhile) makes it durable too.
 * The connection's own setting (the server: FULL, for durable acks) is back before any other code runs.
 */
export function relaxed<T>(db: Db, f: () => T): T {
  if (dialectOf(db) !== 'sqlite') return f(); // PostgreSQL: its commits are the server's to tune
  const was = db.pragma('synchronous', { simple: true }) as number;
  if (was <= 1) return f();
  db.pragma('synchronous = NORMAL');
  try {
    return f();
  } finally {
    db.pragma(`synchronous = ${was}`);
  }
}

/**
 * How a staged commit paces its writes (import-stage.ts `Pace`): `pause` between two steps (in the import's worker
 * thread: the server's thread grants each step), and each step's entries sized from the last step's time, so an
 * ack's commit waits at most one short step for the registry's one writer.
 */
export interface CommitPace {
  pause(): Promise<void>;
  /** Entries for the next write step (at most `max`). */
  size(max: number): number;
  /** A write step of `n` entries took `ms`. */
  took(n: number, ms: number): void;
}

/** Rows of a keyset-paged query, one page fetched at a time (no statement stays open between pages). */
class PageCursor<T extends { token: string }> {
  private buf: T[] = [];
  private i = 0;
  private done = false;
  private after: string | null = null;
  constructor(private readonly fetch: (after: string | null) => T[]) {}
  /** `floor`: refill after this token at least (the caller rewrote rows up to it since the last page). */
  peek(floor: string | null = null): T | undefined {
    if (this.i >= this.buf.length && !this.done) {
      this.buf = this.fetch(floor !== null && (this.after === null || floor > this.after) ? floor : this.after);
      this.i = 0;
      if (this.buf.length === 0) this.done = true;
      else this.after = this.buf[this.buf.length - 1]!.token;
    }
    return this.buf[this.i];
  }
  take(): void {
    this.i++;
  }
}

export const DEFAULT_PUBLISHER_OPTIONS: PublisherOptions = {
  manifestTtlMs: 7 * 86_400_000,
  deltaRetentionMs: 7 * 86_400_000,
  chunkRecords: CHUNK_RECORDS,
  maxDeltaRecords: MAX_DELTA_RECORDS,
};

/**
 * Makes a new version of every scope an import changed: applies the changed
 * entries, stores the delta from the previous version and the chunked
 * snapshot, and publishes delta → chunks → manifest (all retained, signed).
 */
export class Publisher {
  private transport: Transport | null = null;
  private readonly mat: Materializer;
  private clears: string[] = [];
  constructor(
    private readonly db: Db,
    private readonly key: KeyObject,
    private readonly log: Logger,
    private readonly opts: PublisherOptions = DEFAULT_PUBLISHER_OPTIONS,
  ) {
    this.mat = new Materializer(db);
  }

  setTransport(t: Transport | null): void {
    this.transport = t;
  }

  version(scope: string): number {
    return (this.db.prepare('SELECT version FROM scopes WHERE scope = ?').pluck().get(scope) as number | undefined) ?? 0;
  }

  /**
   * Apply changes of dirty tokens; one new version per changed scope. Returns the changed scopes.
   * `snapshotOnly`: scopes whose stored entries may be ahead of their published version (a staged commit
   * cut short, see `commitStaged`): they get a new version even without changes, and no delta.
   */
  commit(dirty: Dirty, now = new Date(), snapshotOnly: ReadonlySet<string> = new Set()): Scope[] {
    const changed: Scope[] = [];
    const getRec = this.db.prepare('SELECT rec FROM entries WHERE scope = ? AND token = ?').pluck();
    const put = this.db.prepare('INSERT INTO entries(scope, token, rec) VALUES (?,?,?) ON CONFLICT(scope, token) DO UPDATE SET rec = excluded.rec');
    const del = this.db.prepare('DELETE FROM entries WHERE scope = ? AND token = ?');
    for (const [scope, tokens] of dirty) {
      const ups: Buffer[] = [];
      const rms: string[] = [];
      if (tokens === ALL_TOKENS || tokens.size > FULL_SCAN || snapshotOnly.has(scope)) {
        // many tokens: one ordered pass over the new and the current entries (merge join)
        const { changes, all } = this.diffAll(scope);
        this.db.transaction(() => {
          for (const c of changes) {
            if (c.rec === null) {
              del.run(scope, c.token);
              rms.push(c.token);
            } else {
              put.run(scope, c.token, c.rec);
              ups.push(c.rec);
            }
          }
          if (ups.length === 0 && rms.length === 0 && !snapshotOnly.has(scope)) return;
          this.newVersion(scope as Scope, ups, rms, now, all, snapshotOnly.has(scope));
          changed.push(scope as Scope);
        })();
        continue;
      }
      this.db.transaction(() => {
        for (const token of tokens) {
          const cur = getRec.get(scope, token) as Buffer | undefined;
          const next = this.mat.records(scope, token);
          if (next === null) {
            if (cur) {
              del.run(scope, token);
              rms.push(token);
            }
          } else if (!cur || !cur.equals(next)) {
            put.run(scope, token, next);
            ups.push(next);
          }
        }
        if (ups.length === 0 && rms.length === 0) return;
        this.newVersion(scope as Scope, ups, rms, now);
        changed.push(scope as Scope);
      })();
    }
    return changed;
  }

  /**
   * `commit` for big changes without blocking the event loop (imports): the same new version, made in
   * pages of PAGE tokens read, their changes written in steps of `pace.size` entries, each step one short
   * transaction, with `pause()` (the event loop, or the server thread's grant) between steps:
   *  1. diff the registry against the stored entries page by page and write the changed entries at once
   *     (the scope is first marked "rewriting" in meta: its entries may be ahead of its published version);
   *  2. the snapshot chunks of the new version (not referenced by any manifest yet);
   *  3. one short transaction: version row, delta (sealed before it), retired versions, and the "rewriting" mark removed.
   * A crash before 3 leaves the scope marked: `recoverRewrites` (at start) gives it a new snapshot-only
   * version of the registry, since a delta from the published version can no longer be computed.
   * Callers serialise commits (start/lists.ts `serial`); the lists stay published as they were until 3.
   */
  async commitStaged(dirty: Dirty, pace: CommitPace | (() => Promise<void>), now = new Date()): Promise<Scope[]> {
    const p: CommitPace = typeof pace === 'function' ? { pause: pace, size: (max) => max, took: () => undefined } : pace;
    const changed: Scope[] = [];
    for (const [scope, tokens] of dirty) if (await this.commitScopeStaged(scope as Scope, tokens, p, now)) changed.push(scope as Scope);
    return changed;
  }

  private async commitScopeStaged(scope: Scope, tokens: Set<string>, pace: CommitPace, now: Date): Promise<boolean> {
    const db = this.db;
    const pause = pace.pause;
    const put = db.prepare('INSERT INTO entries(scope, token, rec) VALUES (?,?,?) ON CONFLICT(scope, token) DO UPDATE SET rec = excluded.rec');
    const del = db.prepare('DELETE FROM entries WHERE scope = ? AND token = ?');
    const curPage = db.prepare('SELECT token, rec FROM entries WHERE scope = ? AND token > ? ORDER BY token LIMIT ?');
    const getRec = db.prepare('SELECT rec FROM entries WHERE scope = ? AND token = ?').pluck();
    // the delta, while it stays small enough to be published
    let ups: Buffer[] | null = [];
    let rms: string[] = [];
    let changes = 0;
    let marked = false;
    const writeStep = (page: { token: string; rec: Buffer | null }[]) => {
      const t0 = performance.now();
      relaxed(db, () =>
        db.transaction(() => {
          if (!marked) this.markRewriting(scope, true);
          for (const c of page) {
            if (c.rec === null) del.run(scope, c.token);
            else put.run(scope, c.token, c.rec);
          }
        })(),
      );
      pace.took(page.length, performance.now() - t0);
      marked = true;
      changes += page.length;
      if (ups && changes <= this.opts.maxDeltaRecords) {
        for (const c of page) {
          if (c.rec === null) rms.push(c.token);
          else ups.push(c.rec);
        }
      } else {
        ups = null;
        rms = [];
      }
    };
    // a page's changes in steps of pace.size entries, a pause between two
    const write = async (page: { token: string; rec: Buffer | null }[]) => {
      for (let i = 0; i < page.length;) {
        const n = pace.size(page.length - i);
        writeStep(page.slice(i, i + n));
        i += n;
        if (i < page.length) await pause();
      }
    };
    let parts: Buffer[] | null = null;
    let entries = 0;
    if (tokens === ALL_TOKENS || tokens.size > FULL_SCAN) {
      // one ordered pass over the new and the current entries (merge join), a page of each at a time
      parts = [];
      const next = new PageCursor((after) => this.mat.scanPage(scope, after, PAGE));
      const cur = new PageCursor((after) => curPage.all(scope, after ?? '', PAGE) as { token: string; rec: Buffer }[]);
      let out: { token: string; rec: Buffer | null }[] = [];
      let seen = 0;
      let recs: Buffer[] = [];
      let pos: string | null = null; // the last token merged: entries up to it may have been rewritten already
      for (;;) {
        const n = next.peek();
        const c = cur.peek(pos);
        if (!n && !c) break;
        pos = n && (!c || n.token <= c.token) ? n.token : c!.token;
        if (n && (!c || n.token < c.token)) {
          out.push(n);
          recs.push(n.rec);
          entries++;
          next.take();
        } else if (!n || c!.token < n.token) {
          out.push({ token: c!.token, rec: null });
          cur.take();
        } else {
          if (!c!.rec.equals(n.rec)) out.push(n);
          recs.push(n.rec);
          entries++;
          next.take();
          cur.take();
        }
        if (++seen % PAGE === 0) {
          await write(out);
          out = [];
          parts.push(Buffer.concat(recs));
          recs = [];
          await pause();
        }
      }
      await write(out);
      parts.push(Buffer.concat(recs));
    } else {
      const list = [...tokens].sort();
      for (let i = 0; i < list.length; i += PAGE) {
        const out: { token: string; rec: Buffer | null }[] = [];
        for (const token of list.slice(i, i + PAGE)) {
          const c = getRec.get(scope, token) as Buffer | undefined;
          const n = this.mat.records(scope, token);
          if (n === null) {
            if (c) out.push({ token, rec: null });
          } else if (!c || !c.equals(n)) out.push({ token, rec: n });
        }
        await write(out);
        await pause();
      }
    }
    if (changes === 0) return false;
    if (!parts) {
      // the new snapshot is what the entries hold now
      parts = [];
      for (let after = ''; ;) {
        const page = curPage.all(scope, after, PAGE * 4) as { token: string; rec: Buffer }[];
        if (page.length === 0) break;
        parts.push(Buffer.concat(page.map((r) => r.rec)));
        entries += page.length;
        after = page[page.length - 1]!.token;
        await pause();
      }
    }
    const snapshot = Buffer.concat(parts);
    const from = this.version(scope);
    const to = from + 1;
    // the chunks of the new version, a few per transaction (the boundaries of splitChunks)
    db.prepare('DELETE FROM chunks WHERE scope = ? AND version >= ?').run(scope, to);
    const ins = db.prepare(UPSERT_CHUNK);
    const step = this.opts.chunkRecords * RECORD_SIZE;
    for (let off = 0, n = 0, end: number; off < snapshot.length; off = end, n++) {
      end = Math.min(snapshot.length, off + step);
      while (end < snapshot.length && snapshot.compare(snapshot, end - RECORD_SIZE, end - RECORD_SIZE + 16, end, end + 16) === 0) end += RECORD_SIZE;
      const part = snapshot.subarray(off, end);
      relaxed(db, () => ins.run(scope, to, n, part.length / RECORD_SIZE, sha256Hex(part), encodeChunk(to, n, part)));
      await pause();
    }
    // sealed (hashed, signed: a fraction of a second for a big delta) before the transaction, not under the write lock
    const delta = this.sealedDelta(scope, from, to, ups as Buffer[] | null, rms, now);
    await pause();
    db.transaction(() => {
      this.switchVersion(scope, from, to, entries, snapshot.length / RECORD_SIZE, delta, now);
      this.markRewriting(scope, false);
    })();
    return true;
  }

  /** Scopes whose entries may be ahead of their published version (a staged commit cut short). */
  rewriting(): string[] {
    const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(REWRITING_KEY) as string | undefined;
    return v === undefined ? [] : (JSON.parse(v) as string[]);
  }

  private markRewriting(scope: string, on: boolean): void {
    const all = new Set(this.rewriting());
    if (on) all.add(scope);
    else all.delete(scope);
    if (all.size === 0) this.db.prepare('DELETE FROM meta WHERE key = ?').run(REWRITING_KEY);
    else
      this.db
        .prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
        .run(REWRITING_KEY, JSON.stringify([...all].sort()));
  }

  /**
   * At start, after a staged commit was cut short: chunks of versions never published are dropped, and each
   * scope still marked "rewriting" gets a new snapshot-only version of the registry, together with `also`
   * (scopes to recompute whole). Returns the scopes that got a new version.
   */
  recoverRewrites(also: readonly string[] = [], now = new Date()): Scope[] {
    this.db.prepare('DELETE FROM chunks WHERE version > (SELECT coalesce(max(s.version), 0) FROM scopes s WHERE s.scope = chunks.scope)').run();
    const rewriting = this.rewriting();
    const scopes = new Set([...also, ...rewriting]);
    if (scopes.size === 0) return [];
    const dirty: Dirty = new Map();
    for (const s of scopes) dirty.set(s, ALL_TOKENS as Set<string>);
    const changed = this.commit(dirty, now, new Set(rewriting));
    this.db.prepare('DELETE FROM meta WHERE key = ?').run(REWRITING_KEY);
    return changed;
  }

  /** Changes between the registry and the materialised entries, plus every new record in token order. */
  private diffAll(scope: string): { changes: { token: string; rec: Buffer | null }[]; all: Buffer[] } {
    const cur = this.db.prepare('SELECT token, rec FROM entries WHERE scope = ? ORDER BY token').all(scope) as { token: string; rec: Buffer }[];
    const out: { token: string; rec: Buffer | null }[] = [];
    const all: Buffer[] = [];
    let i = 0;
    for (const n of this.mat.scan(scope)) {
      all.push(n.rec);
      while (i < cur.length && cur[i]!.token < n.token) out.push({ token: cur[i++]!.token, rec: null });
      if (i < cur.length && cur[i]!.token === n.token) {
        if (!cur[i]!.rec.equals(n.rec)) out.push(n);
        i++;
      } else out.push(n);
    }
    while (i < cur.length) out.push({ token: cur[i++]!.token, rec: null });
    return { changes: out, all };
  }

  /** `all`: every record of the new version in token order, when the caller has it (saves a scan). */
  private newVersion(scope: Scope, ups: Buffer[], rms: string[], now: Date, all?: Buffer[], noDelta = false): void {
    const db = this.db;
    const from = this.version(scope);
    const to = from + 1;
    const counts = all
      ? { n: all.length, b: all.reduce((a, r) => a + r.length, 0) }
      : (db.prepare('SELECT count(*) AS n, coalesce(sum(length(rec)), 0) AS b FROM entries WHERE scope = ?').get(scope) as { n: number; b: number });
    this.switchVersion(scope, from, to, counts.n, counts.b / RECORD_SIZE, noDelta ? null : this.sealedDelta(scope, from, to, ups, rms, now), now);
    // snapshot: all records in token order, chunked
    const recs = all ?? (db.prepare('SELECT rec FROM entries WHERE scope = ? ORDER BY token').pluck().all(scope) as Buffer[]);
    const { refs, payloads } = splitChunks(to, Buffer.concat(recs), this.opts.chunkRecords);
    const ins = db.prepare(UPSERT_CHUNK);
    refs.forEach((r, i) => ins.run(scope, to, r.n, r.records, r.sha256, payloads[i]!));
  }

  /** The signed delta from `from` to `to` (ups null, or too many changes: none, devices take the snapshot). */
  private sealedDelta(scope: Scope, from: number, to: number, ups: Buffer[] | null, rms: string[], now: Date): Sealed | null {
    if (!ups) return null;
    const removeRecs = rms.map((t) => {
      const r = Buffer.alloc(RECORD_SIZE);
      r.write(t, 0, 16, 'hex');
      r[16] = (scope === 'transit' ? 0 : scope === 'stoplist' ? 3 : 2) | 0x08;
      return r;
    });
    if (ups.length + removeRecs.length > this.opts.maxDeltaRecords) return null; // one record per entry at least: too big
    const body = Buffer.concat([...ups, ...removeRecs]);
    if (body.length / RECORD_SIZE > this.opts.maxDeltaRecords) return null;
    return sealDelta(scope, from, to, body, now, this.opts.deltaRetentionMs, this.key);
  }

  /**
   * The version row, the delta from the previous version (`sealedDelta`; null: none, devices take the snapshot),
   * and the retired deltas and snapshots. The snapshot chunks of `to` are written by the caller.
   */
  private switchVersion(scope: Scope, from: number, to: number, entries: number, records: number, delta: Sealed | null, now: Date): void {
    const db = this.db;
    db.prepare(
      'INSERT INTO scopes(scope, version, entries, records, updated_at) VALUES (?,?,?,?,?) ON CONFLICT(scope) DO UPDATE SET version=excluded.version, entries=excluded.entries, records=excluded.records, updated_at=excluded.updated_at',
    ).run(scope, to, entries, records, now.toISOString());
    // delta from the previous version
    if (delta) {
      const { payload, ref } = delta;
      db.prepare(
        `INSERT INTO deltas(scope, from_v, to_v, sha256, records, created_ms, payload) VALUES (?,?,?,?,?,?,?)
         ON CONFLICT(scope, to_v) DO UPDATE SET from_v = excluded.from_v, sha256 = excluded.sha256, records = excluded.records, created_ms = excluded.created_ms, payload = excluded.payload`,
      ).run(scope, ref.from, ref.to, ref.sha256, ref.records, now.getTime(), payload);
    }
    const old = db.prepare('SELECT from_v, to_v FROM deltas WHERE scope = ? AND created_ms < ?').all(scope, now.getTime() - this.opts.deltaRetentionMs) as {
      from_v: number;
      to_v: number;
    }[];
    for (const d of old) this.clears.push(topics.delta(scope, d.from_v, d.to_v));
    db.prepare('DELETE FROM deltas WHERE scope = ? AND created_ms < ?').run(scope, now.getTime() - this.opts.deltaRetentionMs);
    // keep this and the previous snapshot (devices may be half-way through it)
    const gone = db.prepare('SELECT version, n FROM chunks WHERE scope = ? AND version < ?').all(scope, from) as { version: number; n: number }[];
    for (const c of gone) this.clears.push(topics.chunk(scope, c.version, c.n));
    db.prepare('DELETE FROM chunks WHERE scope = ? AND version < ?').run(scope, from);
  }

  manifest(scope: Scope, now = new Date()): Buffer {
    const s = this.db.prepare('SELECT version, entries, records FROM scopes WHERE scope = ?').get(scope) as
      { version: number; entries: number; records: number } | undefined;
    const version = s?.version ?? 0;
    const chunks = this.db.prepare('SELECT n, records, sha256 FROM chunks WHERE scope = ? AND version = ? ORDER BY n').all(scope, version) as ChunkRef[];
    const deltas = this.db.prepare('SELECT from_v AS "from", to_v AS "to", sha256, records FROM deltas WHERE scope = ? ORDER BY to_v').all(scope) as DeltaRef[];
    return sealManifest({ scope, version, entries: s?.entries ?? 0, records: s?.records ?? 0, chunks, deltas, now, ttlMs: this.opts.manifestTtlMs }, this.key);
  }

  scopes(): Scope[] {
    return this.db.prepare('SELECT scope FROM scopes ORDER BY scope').pluck().all() as Scope[];
  }

  /** Retained topics a commit by another publisher on the registry dropped (the import's worker thread, import-thread.ts): cleared by the next publish. */
  clearAlso(topics: readonly string[]): void {
    this.clears.push(...topics);
  }

  /** Publish the newest version of these scopes: delta, chunks, then the manifest. */
  async publish(scopes: readonly Scope[], full = false): Promise<void> {
    const t = this.transport;
    if (!t) return;
    const clears = this.clears;
    this.clears = [];
    // one payload read at a time, a turn of the event loop after each (a million-entry snapshot is some 60 chunks of
    // 400 kB: read and sent at once they held the server's thread, and the acks, for hundreds of milliseconds)
    const deltaOf = this.db.prepare('SELECT payload FROM deltas WHERE scope = ? AND to_v = ?').pluck();
    const chunkOf = this.db.prepare('SELECT payload FROM chunks WHERE scope = ? AND version = ? AND n = ?').pluck();
    for (const scope of scopes) {
      const v = this.version(scope);
      const deltas = this.db
        .prepare(`SELECT from_v, to_v FROM deltas WHERE scope = ? ${full ? '' : 'AND to_v = ?'} ORDER BY to_v`)
        .all(...(full ? [scope] : [scope, v])) as { from_v: number; to_v: number }[];
      for (const d of deltas) {
        const payload = deltaOf.get(scope, d.to_v) as Buffer | undefined;
        if (payload) await t.publish(topics.delta(scope, d.from_v, d.to_v), payload, true);
        await yieldToLoop();
      }
      const chunks = this.db
        .prepare(`SELECT version, n FROM chunks WHERE scope = ? ${full ? 'AND version <= ?' : 'AND version = ?'} ORDER BY version, n`)
        .all(scope, v) as { version: number; n: number }[];
      for (const c of chunks) {
        const payload = chunkOf.get(scope, c.version, c.n) as Buffer | undefined;
        if (payload) await t.publish(topics.chunk(scope, c.version, c.n), payload, true);
        await yieldToLoop();
      }
      // the manifest last: every delta and chunk it names is out before it
      await t.publish(topics.manifest(scope), this.manifest(scope), true);
      this.log.info({ scope, version: v, deltas: deltas.length, chunks: chunks.length }, 'list published');
    }
    // last: clear retained topics of dropped deltas and snapshots (not on the path of a fresh delta)
    for (const c of clears) await t.publish(c, Buffer.alloc(0), true);
  }

  /** After a (re)connection to the broker: everything again (a restarted broker forgets retained messages). */
  async republishAll(): Promise<void> {
    await this.publish(this.scopes(), true);
    await this.publishConfigs();
  }

  /** The current signed manifest of these scopes, retained (the answer to a device's request). */
  async publishManifests(scopes: readonly Scope[]): Promise<void> {
    const t = this.transport;
    if (!t) return;
    for (const scope of scopes) await t.publish(topics.manifest(scope), this.manifest(scope), true);
  }

  /** Fresh manifests (new expiry) for every scope. */
  async reseal(): Promise<void> {
    const t = this.transport;
    if (!t) return;
    for (const scope of this.scopes()) await t.publish(topics.manifest(scope), this.manifest(scope), true);
    await this.publishConfigs();
  }

  setConfig(name: string, doc: unknown, now = new Date()): number {
    doc = assignWireIds(this.db, name, doc); // benefit categories get their server-wide wire ids
    const cur = (this.db.prepare('SELECT version FROM configs WHERE name = ?').pluck().get(name) as number | undefined) ?? 0;
    this.db
      .prepare(
        'INSERT INTO configs(name, version, doc, updated_at) VALUES (?,?,?,?) ON CONFLICT(name) DO UPDATE SET version = excluded.version, doc = excluded.doc, updated_at = excluded.updated_at',
      )
      .run(name, cur + 1, JSON.stringify(doc), now.toISOString());
    this.mat.rulesChanged();
    return cur + 1;
  }

  async publishConfigs(only?: string): Promise<void> {
    const t = this.transport;
    if (!t) return;
    const rows = this.db.prepare('SELECT name, version, doc FROM configs').all() as { name: string; version: number; doc: string }[];
    for (const r of rows) {
      if (only && r.name !== only) continue;
      await t.publish(topics.config(r.name), sealConfig(r.name, r.version, JSON.parse(r.doc), new Date(), this.opts.manifestTtlMs, this.key), true);
    }
  }
}
