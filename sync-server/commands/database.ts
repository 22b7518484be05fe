import type { Command } from 'commander';
import { openDatabase, parseDatabaseSpec } from '../db/open.js';
import { sqliteTuning } from '../db/sql.js';
import type { Db } from '../registry.js';

/**
 * `--database`: which registry a command works on, the same option as `start`'s (db/open.ts parses it): absent,
 * DATA/registry.sqlite; a path, that SQLite file; postgres://…, PostgreSQL (docs/postgres.md). A bad value is
 * db.bad-spec, before anything is opened. The offline commands (user, token, audit, bank, key retire, identities)
 * take it so that they work on the registry a server started with --database uses.
 */
export function databaseOption<C extends Command>(c: C, what = 'migrated when opened'): C {
  return c.option('--database <file|url>', `the registry: a SQLite file (default DATA/registry.sqlite) or postgres://user@host/db (${what}, docs/postgres.md)`);
}

export interface RegistryOpts {
  data: string;
  database?: string;
}

/** The registry an offline command works on, migrated; waits up to 5 s for a SQLite lock a running server holds. */
export function openCommandRegistry(o: RegistryOpts): Db {
  const { db } = openDatabase(parseDatabaseSpec(o.database, o.data));
  sqliteTuning(db, (d) => d.pragma('busy_timeout = 5000'));
  return db;
}
