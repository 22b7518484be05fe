/**
 * `rc-sync-server start --database postgres://…` (issue 16, the foundation): the server opens PostgreSQL and migrates
 * it, then refuses to go on with db.postgres-not-ready (its statements are being ported, docs/postgres.md). A value
 * that is neither a file nor a postgres:// URL is db.bad-spec, refused before anything opens.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliedMigrations, MIGRATIONS } from '../../sync-server/db/migrations.js';
import { PgDb } from '../../sync-server/db/pg.js';
import { Procs } from '../support/rig/procs.js';
import { requirePostgres, startPostgres, type PgServer } from '../support/rig/postgres.js';

const havePg = requirePostgres('db-start.test');
const { RC_DEV_POSTGRES: _dev, ...env } = process.env;
const procs = new Procs({ ...env, RC_LOG_LEVEL: 'warn' }, { timeoutMs: 60_000, graceMs: 5000 });
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

const start = (database: string) =>
  procs.run('sync-server', ['start', '--data', dataDir, '--dev-token-key', '--mqtt-port', '0', '--http-port', '0', '--database', database]);

describe.skipIf(!havePg)('rc-sync-server start --database postgres://…', () => {
  it('migrates the database, then stops with db.postgres-not-ready', async () => {
    const url = pg!.createDatabase('rc_start');
    const r = await start(url);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('db.postgres-not-ready');
    const db = new PgDb({ url });
    try {
      expect(appliedMigrations(db).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('3');
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
