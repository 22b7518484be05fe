import type { KeyObject } from 'node:crypto';
import type { Logger } from '../protocol/log.js';
import type { Scope } from '../protocol/lists.js';
import { RECORD_SIZE } from '../protocol/wire/codec.js';
import { sealConfig, sealDelta, sealManifest, splitChunks } from '../protocol/wire/chunking.js';
import { CHUNK_RECORDS, MAX_DELTA_RECORDS, type ChunkRef, type DeltaRef } from '../protocol/wire/messages.js';
import { topics } from '../protocol/wire/topics.js';
import { ALL_TOKENS, Materializer, type Dirty } from './materialize.js';
import type { Db } from './registry.js';
import { assignWireIds } from './categories.js';

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

/** Above this many changed tokens a scope is recomputed in one ordered pass. */
const FULL_SCAN = 20_000;

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

  /** Apply changes of dirty tokens; one new version per changed scope. Returns the changed scopes. */
  commit(dirty: Dirty, now = new Date()): Scope[] {
    const changed: Scope[] = [];
    const getRec = this.db.prepare('SELECT rec FROM entries WHERE scope = ? AND token = ?').pluck();
    const put = this.db.prepare('INSERT INTO entries(scope, token, rec) VALUES (?,?,?) ON CONFLICT(scope, token) DO UPDATE SET rec = excluded.rec');
    const del = this.db.prepare('DELETE FROM entries WHERE scope = ? AND token = ?');
    for (const [scope, tokens] of dirty) {
      const ups: Buffer[] = [];
      const rms: string[] = [];
      if (tokens === ALL_TOKENS || tokens.size > FULL_SCAN) {
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
          if (ups.length === 0 && rms.length === 0) return;
          this.newVersion(scope as Scope, ups, rms, now, all);
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
  private newVersion(scope: Scope, ups: Buffer[], rms: string[], now: Date, all?: Buffer[]): void {
    const db = this.db;
    const from = this.version(scope);
    const to = from + 1;
    const counts = all
      ? { n: all.length, b: all.reduce((a, r) => a + r.length, 0) }
      : (db.prepare('SELECT count(*) AS n, coalesce(sum(length(rec)), 0) AS b FROM entries WHERE scope = ?').get(scope) as { n: number; b: number });
    db.prepare(
      'INSERT INTO scopes(scope, version, entries, records, updated_at) VALUES (?,?,?,?,?) ON CONFLICT(scope) DO UPDATE SET version=excluded.version, entries=excluded.entries, records=excluded.records, updated_at=excluded.updated_at',
    ).run(scope, to, counts.n, counts.b / RECORD_SIZE, now.toISOString());
    // delta from the previous version
    const removeRecs = rms.map((t) => {
      const r = Buffer.alloc(RECORD_SIZE);
      r.write(t, 0, 16, 'hex');
      r[16] = (scope === 'transit' ? 0 : scope === 'stoplist' ? 3 : 2) | 0x08;
      return r;
    });
    const body = Buffer.concat([...ups, ...removeRecs]);
    if (body.length / RECORD_SIZE <= this.opts.maxDeltaRecords) {
      const { payload, ref } = sealDelta(scope, from, to, body, now, this.opts.deltaRetentionMs, this.key);
      db.prepare('INSERT OR REPLACE INTO deltas(scope, from_v, to_v, sha256, records, created_ms, payload) VALUES (?,?,?,?,?,?,?)').run(
        scope,
        from,
        to,
        ref.sha256,
        ref.records,
        now.getTime(),
        payload,
      );
    }
    const old = db.prepare('SELECT from_v, to_v FROM deltas WHERE scope = ? AND created_ms < ?').all(scope, now.getTime() - this.opts.deltaRetentionMs) as {
      from_v: number;
      to_v: number;
    }[];
    for (const d of old) this.clears.push(topics.delta(scope, d.from_v, d.to_v));
    db.prepare('DELETE FROM deltas WHERE scope = ? AND created_ms < ?').run(scope, now.getTime() - this.opts.deltaRetentionMs);
    // snapshot: all records in token order, chunked
    const recs = all ?? (db.prepare('SELECT rec FROM entries WHERE scope = ? ORDER BY token').pluck().all(scope) as Buffer[]);
    const { refs, payloads } = splitChunks(to, Buffer.concat(recs), this.opts.chunkRecords);
    const ins = db.prepare('INSERT OR REPLACE INTO chunks(scope, version, n, records, sha256, payload) VALUES (?,?,?,?,?,?)');
    refs.forEach((r, i) => ins.run(scope, to, r.n, r.records, r.sha256, payloads[i]!));
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

  /** Publish the newest version of these scopes: delta, chunks, then the manifest. */
  async publish(scopes: readonly Scope[], full = false): Promise<void> {
    const t = this.transport;
    if (!t) return;
    const clears = this.clears;
    this.clears = [];
    for (const scope of scopes) {
      const v = this.version(scope);
      const deltas = this.db
        .prepare(`SELECT from_v, to_v, payload FROM deltas WHERE scope = ? ${full ? '' : 'AND to_v = ?'} ORDER BY to_v`)
        .all(...(full ? [scope] : [scope, v])) as { from_v: number; to_v: number; payload: Buffer }[];
      for (const d of deltas) await t.publish(topics.delta(scope, d.from_v, d.to_v), d.payload, true);
      const chunks = this.db
        .prepare(`SELECT version, n, payload FROM chunks WHERE scope = ? ${full ? '' : 'AND version = ?'} ORDER BY version, n`)
        .all(...(full ? [scope] : [scope, v])) as { version: number; n: number; payload: Buffer }[];
      for (const c of chunks) await t.publish(topics.chunk(scope, c.version, c.n), c.payload, true);
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
      .prepare('INSERT OR REPLACE INTO configs(name, version, doc, updated_at) VALUES (?,?,?,?)')
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
