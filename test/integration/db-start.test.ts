/**
 * `rc-sync-server start --database postgres://…` (issue 16): the server opens PostgreSQL, migrates it and runs on it
 * (the suites on PostgreSQL: the `postgres` vitest project, docs/postgres.md). A database whose text sorts by a
 * language's collation is db.collation-not-bytewise, refused before anything is written. A value that is neither a
 * file nor a postgres:// URL is db.bad-spec, refused before anything opens.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliedMigrations, MIGRATIONS } from '../../sync-server/db/migrations.js';
import { PgDb } from '../../sync-server/db/pg.js';
import { Procs, stopChild } from '../support/rig/procs.js';
import { requirePostgres, startPostgres, type PgServer } from '../support/rig/postgres.js';

const havePg = requirePostgres('db-start.test');
const procs = new Procs({ ...process.env, RC_LOG_LEVEL: 'warn' }, { timeoutMs: 60_000, graceMs: 5000 });
const dataDir = mkdtempSync(join(tmpdir(), 'rc-db-start-'));
let pg: PgServer | null = null;

beforeAll(async () => {
  if (havePg) pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await procs.stopAll();
  await pg?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const startArgs = (database: string) => ['start', '--data', dataDir, '--dev-token-key', '--mqtt-port', '0', '--http-port', '0', '--database', database];
const start = (database: string) => procs.run('sync-server', startArgs(database));

describe.skipIf(!havePg)('rc-sync-server start --database postgres://…', () => {
  it('migrates the database and runs on it: the operator API answers from the registry there', async () => {
    const url = pg!.createDatabase('rc_start');
    const { child, httpUrl } = await procs.startServer(startArgs(url));
    const health = await fetch(`${httpUrl}/v1/health`);
    expect(health.status).toBe(200);
    await stopChild(child);
    const db = new PgDb({ url });
    try {
      expect(appliedMigrations(db).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('3');
    } finally {
      db.close();
    }
    expect(existsSync(join(dataDir, 'registry.sqlite'))).toBe(false);
  });

  it("refuses a database whose text sorts by a language's collation: db.collation-not-bytewise, nothing migrated", async () => {
    const admin = new PgDb({ url: pg!.adminUrl });
    const name = 'rc_start_locale';
    try {
      admin.exec(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'`);
    } finally {
      admin.close();
    }
    const url = new URL(pg!.adminUrl);
    url.pathname = `/${name}`;
    const r = await start(url.toString());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('db.collation-not-bytewise');
    const db = new PgDb({ url: url.toString() });
    try {
      expect(db.prepare("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'").pluck().get()).toBe(0);
    } finally {
      db.close();
    }
  });
});

describe('rc-sync-server start --database with a bad value', () => {
  it('is db.bad-spec, and no registry is made', async () => {
    const r = await start('mysql://user:secret@host/db');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('db.bad-spec');
    expect(r.stderr).not.toContain('secret');
    expect(existsSync(join(dataDir, 'registry.sqlite'))).toBe(false);
  });
});
