/**
 * Imports in short staged transactions (sync-server/import-stage.ts, publisher.ts commitStaged):
 * the same registry and lists as the one-transaction import, one import at a time, a refused import
 * changes nothing, and an import or a lists commit cut short is finished at the next start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { applyImport, parseImport, pendingRecompute, type ImportKind } from '../../sync-server/import.js';
import { finishInterruptedImport } from '../../sync-server/import-recovery.js';
import { Importer } from '../../sync-server/import-stage.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { ALL_TOKENS, Materializer, type Dirty } from '../../sync-server/materialize.js';
import { Publisher, type PublisherOptions } from '../../sync-server/publisher.js';
import { openRegistry, type Db } from '../../sync-server/registry.js';
import { topics } from '../../protocol/wire/topics.js';
import { expectRcError } from '../support/errors.js';
import { quietLogger } from '../support/log.js';
import { waitFor } from '../support/wait.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';

const log = quietLogger();
const OPTS: PublisherOptions = { manifestTtlMs: 86_400_000, deltaRetentionMs: 86_400_000, chunkRecords: 500, maxDeltaRecords: 30_000 };
const TODAY = '2026-11-24';
async function* lines(text: string) {
  yield text;
}

interface Side {
  dir: string;
  db: Db;
  pub: Publisher;
  importer: Importer;
}
const sides: Side[] = [];
function side(serial: <T>(f: () => Promise<T>) => Promise<T> = (f) => f()): Side {
  const dir = mkdtempSync(join(tmpdir(), 'rc-import-stage-'));
  const db = openRegistry(dir);
  const signingKey = loadOrCreateSigningKey(dir).privateKey;
  const pub = new Publisher(db, signingKey, log, OPTS);
  // the server's way: the steps in the import's worker thread (import-thread.ts), on a connection of its own
  const importer = new Importer({
    db,
    publisher: pub,
    log,
    serial,
    tokenKey: DEV_TOKEN_KEY,
    categories: () => ['pensioner', 'student'],
    today: () => TODAY,
    worker: { signingKey, publisher: OPTS },
  });
  const s = { dir, db, pub, importer };
  sides.push(s);
  return s;
}
/** The same data dir opened again, as a restarted server would. */
function reopen(s: Side): Side {
  const db = openRegistry(s.dir);
  const pub = new Publisher(db, loadOrCreateSigningKey(s.dir).privateKey, log, OPTS);
  const r = {
    dir: s.dir,
    db,
    pub,
    importer: new Importer({ db, publisher: pub, log, serial: (f) => f(), tokenKey: DEV_TOKEN_KEY, categories: () => [], today: () => TODAY }),
  };
  sides.push(r);
  return r;
}
beforeEach(() => {
  sides.length = 0;
});
afterEach(() => {
  for (const s of sides) {
    if (s.db.open) s.db.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

async function oneTransaction(s: Side, kind: ImportKind, text: string) {
  const { rows } = await parseImport(kind, lines(text), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: TODAY, categories: ['pensioner', 'student'] });
  s.pub.commit(applyImport(s.db, kind, rows, TODAY));
}

/** What devices get: versions and counts, entries, chunk hashes, and the delta sizes. */
function published(db: Db) {
  return {
    scopes: db.prepare('SELECT scope, version, entries, records FROM scopes ORDER BY scope').all(),
    entries: db.prepare('SELECT scope, token, hex(rec) AS rec FROM entries ORDER BY scope, token').all(),
    chunks: db.prepare('SELECT scope, version, n, records, sha256 FROM chunks ORDER BY scope, version, n').all(),
    deltas: db.prepare('SELECT scope, from_v, to_v, records FROM deltas ORDER BY scope, to_v').all(),
    cards: db.prepare('SELECT person_id, token, expiry FROM cards ORDER BY person_id').all(),
    benefits: db.prepare('SELECT person_id, category, valid_from, valid_to FROM benefits ORDER BY person_id, category, valid_from').all(),
    stoplist: db.prepare('SELECT token, reason FROM stoplist ORDER BY token').all(),
  };
}

/** The scope's stored entries equal what the registry implies, and its newest snapshot holds them. */
function consistent(db: Db, scope: string): void {
  const want = [...new Materializer(db).scan(scope)].map((e) => `${e.token}:${e.rec.toString('hex')}`);
  const have = (db.prepare('SELECT token, rec FROM entries WHERE scope = ? ORDER BY token').all(scope) as { token: string; rec: Buffer }[]).map(
    (e) => `${e.token}:${e.rec.toString('hex')}`,
  );
  expect(have).toEqual(want);
  const v = db.prepare('SELECT version, entries FROM scopes WHERE scope = ?').get(scope) as { version: number; entries: number };
  expect(v.entries).toBe(want.length);
  const snap = Buffer.concat(
    (db.prepare('SELECT payload FROM chunks WHERE scope = ? AND version = ? ORDER BY n').pluck().all(scope, v.version) as Buffer[]).map((p) => p.subarray(44)),
  );
  const all = Buffer.concat((db.prepare('SELECT rec FROM entries WHERE scope = ? ORDER BY token').pluck().all(scope) as Buffer[]) ?? []);
  expect(snap.equals(all)).toBe(true);
}

describe('staged import', () => {
  it('leaves the registry and publishes the lists exactly as the one-transaction import (small and big files, moves, benefits, stop-list)', async () => {
    const a = side();
    const b = side();
    // a card moving from one person to another, a benefits file replacing per person (two rows of one person far apart)
    const moved = cardsCsv(0, 3000)
      .replace('\np5,', '\np5x,')
      .replace(/\np7,([^\n]*)/, '\np7,$1\np7b,' + cardsCsv(5, 1).split('\n')[1]!.split(',').slice(1).join(','));
    const benefits = benefitsCsv(0, 2500) + 'p3,student,2026-01-01,2026-12-31\n';
    const steps: [ImportKind, string][] = [
      ['cards', cardsCsv(0, 3000)], // per-token commit, two pages
      ['cards', moved],
      ['benefits', benefits],
      ['stoplist', `token,reason\n${tokenOf(1)},lost\n${tokenOf(2)},stolen\n`],
      ['cards', cardsCsv(1000, 24_000, '2031-01')], // a big file: whole scopes in pages
      ['stoplist', `token,reason\n${tokenOf(2)},lost\n`],
    ];
    for (const [kind, text] of steps) {
      await oneTransaction(a, kind, text);
      const r = await b.importer.run(kind, lines(text), false);
      expect(r.report.rejected).toBe(0);
    }
    expect(published(b.db)).toEqual(published(a.db));
    for (const scope of ['transit', 'stoplist']) consistent(b.db, scope);
    expect(pendingRecompute(b.db)).toEqual([]);
    expect(b.pub.rewriting()).toEqual([]);
    expect(b.db.prepare('SELECT count(*) FROM import_stage').pluck().get()).toBe(0);
    const list = b.importer.list();
    expect(list.map((i) => [i.kind, i.state])).toEqual(steps.map(([k]) => [k, 'done']).reverse());
    expect(list[1]).toMatchObject({ rows: 24_000, applied: 24_000, rejected: 0 });
    expect(list[1]!.finishedAt! >= list[1]!.startedAt).toBe(true);
  }, 120_000);

  it('a refused file changes nothing and is listed as failed with its code; skip-invalid applies the good rows', async () => {
    const s = side();
    await s.importer.run('cards', lines(cardsCsv(0, 100)), false);
    const before = published(s.db);
    const bad = cardsCsv(100, 5000).replace('\np4000,', '\np4000!,');
    await expectRcError(s.importer.run('cards', lines(bad), false), ErrorCode.ServerImportInvalid);
    expect(published(s.db)).toEqual(before);
    expect(s.db.prepare('SELECT count(*) FROM import_stage').pluck().get()).toBe(0);
    expect(s.importer.list()[0]).toMatchObject({ kind: 'cards', state: 'failed', error: ErrorCode.ServerImportInvalid, rows: expect.any(Number) });
    const r = await s.importer.run('cards', lines(bad), true);
    expect(r.report).toMatchObject({ rows: 5000, applied: 4999, rejected: 1 });
    expect(s.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(5099);
  });

  it("the retained snapshots an import's new version drops (in the worker thread) are cleared on the broker by the server's publisher", async () => {
    const s = side();
    const sent: { topic: string; bytes: number }[] = [];
    s.pub.setTransport({ publish: (topic, payload) => Promise.resolve(void sent.push({ topic, bytes: payload.length })) });
    for (const expiry of ['2031-01', '2032-02', '2033-03']) await s.importer.run('cards', lines(cardsCsv(0, 1200, expiry)), false);
    expect(s.pub.version('transit')).toBe(3);
    // version 1's chunks were retained; the third version keeps 2 and 3 and clears 1 (an empty retained message)
    const v1 = [0, 1, 2].map((n) => topics.chunk('transit', 1, n));
    expect(sent.filter((m) => v1.includes(m.topic) && m.bytes > 0).map((m) => m.topic)).toEqual(v1);
    expect(sent.filter((m) => m.bytes === 0).map((m) => m.topic)).toEqual(v1);
    expect(s.db.prepare("SELECT DISTINCT version FROM chunks WHERE scope = 'transit' ORDER BY version").pluck().all()).toEqual([2, 3]);
  });

  it("a lists commit paced in short steps (the import's pace while uploads flow) makes the same version; publish sends its delta and chunks before its manifest", async () => {
    const s = side();
    await s.importer.run('cards', lines(cardsCsv(0, 3000)), false);
    const v1 = s.pub.version('transit');
    const { rows } = await parseImport('cards', lines(cardsCsv(0, 3000, '2033-03')), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: TODAY });
    const dirty: Dirty = applyImport(s.db, 'cards', rows, TODAY);
    const steps: number[] = [];
    let pauses = 0;
    const changed = await s.pub.commitStaged(dirty, {
      pause: async () => void pauses++,
      size: (max) => Math.min(max, 37),
      took: (n) => void steps.push(n),
    });
    expect(changed).toEqual(['transit']);
    expect(s.pub.version('transit')).toBe(v1 + 1);
    // every changed entry written (6,000 for this file: the delta below counts them), never more than the
    // pace's 37 in one transaction, a pause after each step
    expect(Math.max(...steps)).toBeLessThanOrEqual(37);
    expect(pauses).toBeGreaterThanOrEqual(steps.length);
    consistent(s.db, 'transit');
    // the delta from v1 (sealed before the final transaction): one record per entry written (no benefits here)
    const records = s.db
      .prepare("SELECT records FROM deltas WHERE scope = 'transit' AND from_v = ? AND to_v = ?")
      .pluck()
      .get(v1, v1 + 1);
    expect(records).toBe(6000);
    expect(steps.reduce((a, n) => a + n, 0)).toBe(records);
    const sent: string[] = [];
    s.pub.setTransport({ publish: (topic) => Promise.resolve(void sent.push(topic)) });
    await s.pub.publish(changed);
    const chunks = s.db
      .prepare("SELECT n FROM chunks WHERE scope = 'transit' AND version = ? ORDER BY n")
      .pluck()
      .all(v1 + 1) as number[];
    expect(chunks.length).toBeGreaterThan(1);
    expect(sent.filter((t) => !t.endsWith('/chunk/' + String(v1 - 1)))).toEqual([
      topics.delta('transit', v1, v1 + 1),
      ...chunks.map((n) => topics.chunk('transit', v1 + 1, n)),
      topics.manifest('transit'),
    ]);
  }, 60_000);

  it('one import at a time: a second one while the first reads its file is import.busy, the first completes', async () => {
    const s = side();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow() {
      yield cardsCsv(0, 10);
      await gate;
      yield cardsCsv(10, 10).split('\n').slice(1).join('\n');
    }
    const first = s.importer.run('cards', slow(), false);
    // refused at once, even before the import's worker thread has made its row
    await expectRcError(s.importer.run('stoplist', lines(`token,reason\n${tokenOf(1)},lost\n`), false), ErrorCode.ImportBusy);
    await waitFor(() => s.importer.list()[0]?.state === 'running', { timeoutMs: 20_000, what: 'the first import running' });
    expect(s.importer.list()[0]).toMatchObject({ state: 'running', kind: 'cards' });
    await expectRcError(s.importer.run('stoplist', lines(`token,reason\n${tokenOf(1)},lost\n`), false), ErrorCode.ImportBusy);
    release();
    expect((await first).report.applied).toBe(20);
    expect(s.importer.list()[0]).toMatchObject({ state: 'done', rows: 20 });
    // free again
    await s.importer.run('stoplist', lines(`token,reason\n${tokenOf(1)},lost\n`), false);
  });

  it('a server stopped while the file was read imports nothing of it; at the next start the import is failed (server.import-interrupted)', async () => {
    const s = side();
    await s.importer.run('cards', lines(cardsCsv(0, 50)), false);
    const before = published(s.db);
    async function* stuck() {
      // staged in steps of at most STAGE_ROWS (2,000), sized by the pace: a last partial step waits for more rows, so
      // of these 5,000 at least 3,001 are staged, then nothing more (the worker's pace made 3,321 or 3,938 staged)
      yield cardsCsv(1000, 5000, '2032-02');
      await new Promise(() => undefined); // the server dies here
    }
    void s.importer.run('cards', stuck(), false);
    // the import's worker thread lives on in this process (a real crash ends it): wait until it has staged all it can
    const staged = () => s.db.prepare('SELECT count(*) FROM import_stage').pluck().get() as number;
    let last = -1;
    await waitFor(
      () => {
        const n = staged();
        const still = n >= 3000 && n === last;
        last = n;
        return still;
      },
      { timeoutMs: 20_000, everyMs: 500, what: () => `rows staged, then no more (${staged()} so far; imports: ${JSON.stringify(s.importer.list())})` },
    );
    const r = reopen(s);
    finishInterruptedImport(r.db, r.pub, log);
    expect(published(r.db)).toEqual(before);
    expect(r.db.prepare('SELECT count(*) FROM import_stage').pluck().get()).toBe(0);
    expect(r.importer.list()[0]).toMatchObject({ state: 'failed', error: ErrorCode.ServerImportInterrupted });
  }, 60_000);

  it('an import whose worker thread dies on its own fails (server.internal), changes nothing, and the next import runs in a new worker', async () => {
    const s = side();
    await s.importer.run('cards', lines(cardsCsv(0, 50)), false);
    const before = published(s.db);
    const staged = () => s.db.prepare('SELECT count(*) FROM import_stage').pluck().get() as number;
    async function* stuck() {
      yield cardsCsv(1000, 5000, '2032-02');
      await new Promise(() => undefined); // the rest of the file never comes: the worker dies meanwhile
    }
    const dying = s.importer.run('cards', stuck(), false);
    dying.catch(() => undefined); // awaited below
    await waitFor(() => staged() > 0, { timeoutMs: 20_000, what: 'rows staged by the worker' });
    const thread = (s.importer as unknown as { thread: { worker: Worker } | null }).thread;
    expect(thread).not.toBeNull();
    await thread!.worker.terminate(); // as the thread's own crash would end it (an abort in a native addon, say)
    await expectRcError(dying, ErrorCode.ServerInternal);
    expect(s.importer.list()[0]).toMatchObject({ state: 'failed', kind: 'cards' });
    expect(published(s.db)).toEqual(before);
    expect(s.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(50);
    // not busy: the next import starts a new worker, clears what the dead one staged and applies
    await s.importer.run('cards', lines(cardsCsv(0, 60)), false);
    expect(s.importer.list()[0]).toMatchObject({ state: 'done', rows: 60 });
    expect(s.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(60);
    expect(staged()).toBe(0);
    consistent(s.db, 'transit');
  }, 60_000);

  it("the server's thread committing all along (a device's journal acks) does not fail the worker's steps", async () => {
    // a step that read before its first write failed with SQLITE_BUSY_SNAPSHOT when the server's thread committed in
    // between (a deferred transaction cannot take the write lock on an old snapshot): the import's answer was server.internal
    const s = side();
    const touch = s.db.prepare('INSERT INTO devices(id, last_seen) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen');
    let commits = 0;
    let on = true;
    const writer = (async () => {
      while (on) {
        s.db.transaction(() => {
          s.db.prepare('SELECT count(*) FROM devices').get(); // read first, as ingest's checks do
          touch.run(`dev-${commits % 7}`, new Date().toISOString());
        })();
        commits++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      await s.importer.run('cards', lines(cardsCsv(0, 3000)), false);
      await s.importer.run('cards', lines(cardsCsv(0, 20_000, '2032-03')), false);
      await s.importer.run('benefits', lines(benefitsCsv(0, 5000)), false);
    } finally {
      on = false;
      await writer;
    }
    expect(s.importer.list().map((i) => i.state)).toEqual(['done', 'done', 'done']);
    expect(s.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(20_000);
    expect(commits).toBeGreaterThan(100);
    consistent(s.db, 'transit');
  }, 120_000);

  it('a server stopped once the file was staged whole applies it whole at the next start, and the lists follow', async () => {
    // serial never runs: the import stops right after its file was staged, before anything is applied
    const s = side(() => new Promise(() => undefined));
    void s.importer.run('cards', lines(cardsCsv(0, 4000)), false);
    await waitFor(() => s.importer.list()[0]?.applied === 4000, { timeoutMs: 20_000, what: 'file staged whole' });
    expect(s.db.prepare('SELECT count(*) FROM import_stage').pluck().get()).toBe(4000);
    expect(s.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(0);
    const r = reopen(s);
    finishInterruptedImport(r.db, r.pub, log);
    expect(r.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(4000);
    consistent(r.db, 'transit');
    expect(r.importer.list()[0]).toMatchObject({ state: 'done', rows: 4000, applied: 4000 });
    expect(pendingRecompute(r.db)).toEqual([]);
  });

  it('a lists commit cut short half-way is finished at the next start as a snapshot-only version of the registry', async () => {
    const s = side();
    await s.importer.run('cards', lines(cardsCsv(0, 30_000)), false);
    const v1 = s.pub.version('transit');
    // the registry changes (a new expiry for everyone), then the staged commit dies after two pages
    const { rows } = await parseImport('cards', lines(cardsCsv(0, 30_000, '2033-03')), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: TODAY });
    const dirty: Dirty = applyImport(s.db, 'cards', rows, TODAY);
    expect(dirty.get('transit')).toBe(ALL_TOKENS);
    let pauses = 0;
    await expect(
      s.pub.commitStaged(dirty, async () => {
        if (++pauses === 3) throw new Error('killed');
      }),
    ).rejects.toThrow('killed');
    expect(s.pub.rewriting()).toEqual(['transit']);
    expect(s.pub.version('transit')).toBe(v1); // still the published version
    const r = reopen(s);
    finishInterruptedImport(r.db, r.pub, log);
    expect(r.pub.version('transit')).toBe(v1 + 1);
    expect(r.pub.rewriting()).toEqual([]);
    consistent(r.db, 'transit');
    // no delta to the new version: the entries were already half rewritten, so devices take the snapshot
    expect(
      r.db
        .prepare("SELECT count(*) FROM deltas WHERE scope = 'transit' AND to_v = ?")
        .pluck()
        .get(v1 + 1),
    ).toBe(0);
    expect(new Set(r.db.prepare('SELECT expiry FROM cards').pluck().all() as string[])).toEqual(new Set(['2033-03']));
  }, 60_000);
});
