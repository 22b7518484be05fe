/**
 * Which database the servers a test starts keep their registry in: SQLite in their data dir (the default), or,
 * with RC_TEST_DB=postgres (the `postgres` vitest project sets it), a fresh PostgreSQL database each, on the run's
 * private PostgreSQL (test/support/rig/postgres-global.ts). Tests that look at the SQLite file itself (modes, WAL,
 * fsync traces) are SQLite only: `describe.skipIf(onPostgres)` with the reason.
 */
import { inject } from 'vitest';
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

/** `--database URL` for `rc-sync-server start ARGS` on PostgreSQL (unless ARGS name one); nothing on SQLite. */
export function testDatabaseArgs(args: readonly string[]): string[] {
  if (!onPostgres || args.includes('--database')) return [];
  const at = args.indexOf('--data');
  const url = testDatabase(at >= 0 ? args[at + 1] : undefined);
  return url ? ['--database', url] : [];
}
