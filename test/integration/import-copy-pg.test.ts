/**
 * Imports on PostgreSQL stage their rows through COPY (issue 16; sync-server/import-stage.ts stageByCopy,
 * sync-server/db/pg-copy.ts), on a real PostgreSQL 15 (test/support/rig/postgres.ts): PostgreSQL's own progress view
 * counts the rows the import's COPY took while the file streams in, none of them visible before the switch to
 * "apply"; a refused file, an upload cut short and a COPY connection lost each leave the registry and the stage as they
 * were, with the import failed under its code; the staged rows hold tokens, never a PAN.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { openDatabase } from '../../sync-server/db/open.js';
import { PgDb } from '../../sync-server/db/pg.js';
import { Importer } from '../../sync-server/import-stage.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { Publisher, type PublisherOptions } from '../../sync-server/publisher.js';
import type { Db } from '../../sync-server/registry.js';
import { expectRcError } from '../support/errors.js';
import { quietLogger } from '../support/log.js';
import { syntheticPan } from '../support/pans.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { requirePostgres, startPostgres, type PgServer } from '../support/rig/postgres.js';
import { registryContents } from '../support/test-db.js';
import { waitFor } from '../support/wait.js';

const havePg = requirePostgres('import-copy-pg.test');
const log = quietLogger();
const OPTS: PublisherOptions = { manifestTtlMs: 86_400_000, deltaRetentionMs: 86_400_000, chunkRecords: 500, maxDeltaRecords: 30_000 };
const TODAY = '2026-12-02';

let pg: PgServer | null = null;
const opened: Db[] = [];
const dirs: string[] = [];
beforeAll(async () => {
  if (havePg) pg = await startPostgres();
}, 60_000);
afterEach(() => {
  for (const db of opened.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
afterAll(async () => {
  await pg?.stop();
});

interface Side {
  url: string;
  db: Db;
  /** A second connection, as an operator's psql: sees only what the import committed. */
  watch: Db;
  importer: Importer;
}

function side(): Side {
  const url = pg!.createDatabase();
  const { db } = openDatabase({ kind: 'postgres', url });
  const watch = new PgDb({ url });
  opened.push(db, watch);
  const dir = mkdtempSync(join(tmpdir(), 'rc-import-copy-'));
  dirs.push(dir);
  const pub = new Publisher(db, loadOrCreateSigningKey(dir).privateKey, log, OPTS);
  const importer = new Importer({ db, publisher: pub, log, serial: (f) => f(), tokenKey: DEV_TOKEN_KEY, categories: () => [], today: () => TODAY });
  return { url, db, watch, importer };
}

const count = (db: Db, table: string) => Number(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get());
/** The import's COPY as PostgreSQL reports it while it runs (pg_stat_progress_copy, PostgreSQL 14+). */
const copyProgress = (watch: Db) =>
  watch
    .prepare(
      "SELECT p.command, p.type, c.relname, p.tuples_processed AS tuples FROM pg_stat_progress_copy p JOIN pg_class c ON c.oid = p.relid JOIN pg_stat_activity a ON a.pid = p.pid WHERE a.application_name = 'rc-import-copy'",
    )
    .all() as { command: string; type: string; relname: string; tuples: number }[];
const copyConnections = (watch: Db) => Number(watch.prepare("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rc-import-copy'").pluck().get());

/** The cards file's lines after its header, then a pause until `go` resolves (an upload still in flight), then the rest. */
function paused(head: string, rest: string, go: Promise<void>, fail?: Error): AsyncGenerator<string> {
  return (async function* () {
    yield head;
    await go;
    if (fail) throw fail;
    yield rest;
  })();
}

describe.skipIf(!havePg)('imports on PostgreSQL stage through COPY', () => {
  it("stages the file's rows through one COPY, visible to nobody until the switch to apply; the cards land, and no PAN is anywhere", async () => {
    const s = side();
    let release!: () => void;
    const go = new Promise<void>((r) => (release = r));
    const head = cardsCsv(0, 5_000);
    const rest = cardsCsv(5_000, 1_000).split('\n').slice(1).join('\n');
    const run = s.importer.run('cards', paused(head, rest, go), false);
    // PostgreSQL counts the rows the import's COPY took (its buffer is handed on every 64 kB): more than half of them
    await waitFor(() => (copyProgress(s.watch)[0]?.tuples ?? 0) >= 2_500, {
      timeoutMs: 20_000,
      what: () => `the import's COPY in pg_stat_progress_copy: ${JSON.stringify(copyProgress(s.watch))}`,
    });
    expect(copyProgress(s.watch)[0]).toMatchObject({ command: 'COPY FROM', type: 'PIPE', relname: 'import_stage' });
    expect(count(s.watch, 'import_stage')).toBe(0); // one transaction: nothing staged is visible (nor left by a crash)
    expect(s.watch.prepare('SELECT state, phase FROM imports ORDER BY id DESC LIMIT 1').get()).toEqual({ state: 'running', phase: 'parse' });
    release();
    const answer = await run;
    expect(answer.report).toMatchObject({ rows: 6_000, applied: 6_000, rejected: 0 });
    expect(count(s.watch, 'cards')).toBe(6_000);
    expect(s.watch.prepare('SELECT token FROM cards WHERE person_id = ?').pluck().get('p5999')).toBe(tokenOf(5_999));
    expect(count(s.watch, 'import_stage')).toBe(0);
    expect(copyConnections(s.watch)).toBe(0); // the COPY's connection is closed with its import
    expect(s.importer.list()[0]).toMatchObject({ state: 'done', rows: 6_000, applied: 6_000 });
    const all = registryContents(s.watch, '');
    for (const i of [0, 2_500, 5_999]) expect(all.includes(syntheticPan(i))).toBe(false);
  }, 60_000);

  it('a bad row refuses the file (server.import-invalid) and changes nothing; with skip-invalid the good rows are applied', async () => {
    const s = side();
    await s.importer.run('cards', paused(cardsCsv(0, 100), '', Promise.resolve()), false);
    const cards = () => s.watch.prepare('SELECT person_id, token FROM cards ORDER BY person_id').all();
    const before = cards();
    const bad = cardsCsv(100, 3_000).replace(/\np2000,\d+/, '\np2000,1234');
    const e = await expectRcError(s.importer.run('cards', paused(bad, '', Promise.resolve()), false), ErrorCode.ServerImportInvalid);
    expect(e.context?.report).toMatchObject({ rows: 3_000, rejected: 1, applied: 0 });
    expect(cards()).toEqual(before);
    expect(count(s.watch, 'import_stage')).toBe(0);
    expect(copyConnections(s.watch)).toBe(0);
    expect(s.importer.list()[0]).toMatchObject({ state: 'failed', error: ErrorCode.ServerImportInvalid });
    const skipped = await s.importer.run('cards', paused(bad, '', Promise.resolve()), true);
    expect(skipped.report).toMatchObject({ rows: 3_000, rejected: 1, applied: 2_999 });
    expect(count(s.watch, 'cards')).toBe(100 + 2_999);
  }, 60_000);

  it('an upload cut short while its rows are copied fails the import with its code and stages nothing', async () => {
    const s = side();
    let release!: () => void;
    const go = new Promise<void>((r) => (release = r));
    const cut = new RcError(ErrorCode.ServerImportTooLarge, 'the upload was cut short');
    const run = s.importer.run('cards', paused(cardsCsv(0, 4_000), '', go, cut), false);
    await waitFor(() => (copyProgress(s.watch)[0]?.tuples ?? 0) > 0, { timeoutMs: 20_000, what: "the import's COPY under way" });
    release();
    await expectRcError(run, ErrorCode.ServerImportTooLarge);
    expect(count(s.watch, 'cards')).toBe(0);
    expect(count(s.watch, 'import_stage')).toBe(0);
    expect(copyConnections(s.watch)).toBe(0);
    expect(s.importer.list()[0]).toMatchObject({ state: 'failed', error: ErrorCode.ServerImportTooLarge });
  }, 60_000);

  it("the COPY's connection lost mid-file (its backend terminated): the import fails with db.unavailable, nothing staged, and the next import runs", async () => {
    const s = side();
    let release!: () => void;
    const go = new Promise<void>((r) => (release = r));
    const run = s.importer.run('cards', paused(cardsCsv(0, 4_000), cardsCsv(4_000, 10).split('\n').slice(1).join('\n'), go), false);
    await waitFor(() => (copyProgress(s.watch)[0]?.tuples ?? 0) > 0, { timeoutMs: 20_000, what: "the import's COPY under way" });
    s.watch.prepare("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rc-import-copy'").all();
    release();
    await expectRcError(run, ErrorCode.DbUnavailable);
    expect(count(s.watch, 'import_stage')).toBe(0);
    expect(count(s.watch, 'cards')).toBe(0);
    expect(s.importer.list()[0]).toMatchObject({ state: 'failed', error: ErrorCode.DbUnavailable });
    const again = await s.importer.run('cards', paused(cardsCsv(0, 50), '', Promise.resolve()), false);
    expect(again.report.applied).toBe(50);
  }, 60_000);
});
