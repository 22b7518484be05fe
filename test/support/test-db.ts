/**
 * Which database the servers a test starts keep their registry in: SQLite in their data dir (the default), or,
 * with RC_TEST_DB=postgres (the `postgres` vitest project sets it), a fresh PostgreSQL database each, on the run's
 * private PostgreSQL (test/support/rig/postgres-global.ts). Tests that look at the SQLite file itself (modes, WAL,
 * fsync traces) are SQLite only: `describe.skipIf(onPostgres)` with the reason.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inject } from 'vitest';
import { openDatabase } from '../../sync-server/db/open.js';
import { dialectOf } from '../../sync-server/db/sql.js';
import { openRegistry, type Db } from '../../sync-server/registry.js';
import { createDatabaseAt } from './rig/postgres.js';

export const onPostgres = process.env.RC_TEST_DB === 'postgres';

/** A server restarted on its data dir finds its registry again: one database per data dir, for the test file's life. */
const byDataDir = new Map<string, string>();

/**
 * The `database` option (or `--database` value) for one new server: a new PostgreSQL database's URL on PostgreSQL,
 * undefined on SQLite (the server's data dir then holds registry.sqlite). The same `dataDir` gets the same database.
 */
export function testDatabase(dataDir?: string): string | undefined {
  if (!onPostgres) return undefined;
  const known = dataDir === undefined ? undefined : byDataDir.get(dataDir);
  if (known) return known;
  const admin = inject('rcPgAdmin');
  if (!admin)
    throw new Error(
      "RC_TEST_DB=postgres needs the run's PostgreSQL: run through the vitest config (globalSetup test/support/rig/postgres-global.ts), with PostgreSQL 15 installed",
    );
  const url = createDatabaseAt(admin);
  if (dataDir !== undefined) byDataDir.set(dataDir, url);
  return url;
}

/**
 * The registry a unit suite works on directly, migrated: DATA/registry.sqlite on SQLite; on PostgreSQL the database
 * of `dataDir` (a fresh one the first time, the same one when opened again: another connection, as another instance).
 */
export function openTestRegistry(dataDir: string): Db {
  const url = testDatabase(dataDir);
  return url === undefined ? openRegistry(dataDir) : openDatabase({ kind: 'postgres', url }).db;
}

/** `--database URL` for `rc-sync-server start ARGS` on PostgreSQL (unless ARGS name one); nothing on SQLite. */
export function testDatabaseArgs(args: readonly string[]): string[] {
  if (!onPostgres || args.includes('--database')) return [];
  const at = args.indexOf('--data');
  const url = testDatabase(at >= 0 ? args[at + 1] : undefined);
  return url ? ['--database', url] : [];
}

/** Whether `rc-sync-server ARGS` opens the registry (and so takes `--database`): start and the offline commands. */
function opensRegistry(args: readonly string[]): boolean {
  const [command, sub] = args;
  if (command === 'key' || command === 'keys') return sub === 'retire';
  return ['start', 'user', 'token', 'audit', 'bank', 'identities'].includes(command ?? '');
}

/**
 * ARGS of a process-level `rc-sync-server ARGS` run in `cwd`, with `--database URL` on PostgreSQL when the command
 * opens the registry: the database of its data dir (`--data`, else the default ./rc-sync-data), so a server and the
 * offline commands run beside it on the same data dir share one registry, as they share the SQLite file.
 */
export function withTestDatabase(args: readonly string[], cwd: string): string[] {
  if (!opensRegistry(args)) return [...args];
  const at = args.indexOf('--data');
  return [...args, ...testDatabaseArgs(['--data', resolve(cwd, at >= 0 ? args[at + 1]! : 'rc-sync-data')])];
}

/**
 * Everything the registry holds, as one string to search (for "the PAN is nowhere"): on SQLite the bytes of its files
 * in `dataDir` (database and WAL, after a checkpoint), as latin1; on PostgreSQL the text of every row of every table,
 * with each bytea value also decoded (`\x…` → its bytes, latin1).
 */
export function registryContents(db: Db, dataDir: string): string {
  if (dialectOf(db) === 'sqlite') {
    db.pragma('wal_checkpoint(FULL)');
    const files = readdirSync(dataDir).filter((f) => f.startsWith('registry.sqlite'));
    if (files.length === 0) throw new Error(`no registry file in ${dataDir}`);
    return files.map((f) => readFileSync(join(dataDir, f)).toString('latin1')).join('\n');
  }
  const tables = db.prepare('SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema() ORDER BY tablename').pluck().all() as string[];
  if (tables.length === 0) throw new Error('no table in the PostgreSQL registry');
  const rows = tables.flatMap((t) => db.prepare(`SELECT CAST(r AS TEXT) FROM "${t}" r`).pluck().all() as string[]);
  const text = rows.join('\n');
  const bytes = [...text.matchAll(/\\{1,2}x([0-9a-f]{2,})/g)].map((m) => Buffer.from(m[1]!, 'hex').toString('latin1'));
  return [text, ...bytes].join('\n');
}
