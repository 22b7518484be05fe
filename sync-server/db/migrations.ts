import { ErrorCode, RcError } from '../../protocol/errors.js';
import { registry1 } from './migrations/001-registry.js';
import { explicitIds2 } from './migrations/002-explicit-ids.js';
import { migrateLegacyRegistry } from './migrations/legacy.js';
import type { Db } from './types.js';

/**
 * Versioned schema migrations, the same versions on SQLite and on PostgreSQL: each is written once per dialect
 * (./migrations/NNN-name.ts), applied in order inside one transaction with its row in `schema_migrations`
 * (version, name, applied_at). A registry records which versions it has, so opening it again applies nothing.
 *
 * All of the registry's DDL is here: no module makes or alters a table at run time. A SQLite registry made before
 * schema_migrations existed (by the modules' former ensure…Schema functions) is brought up to date by that code,
 * frozen in ./migrations/legacy.ts, and recorded as version 1: nothing in it is rewritten or lost. On PostgreSQL
 * concurrent servers migrating one database serialise on a transaction-level advisory lock.
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS: readonly Migration[] = [registry1, explicitIds2];

/** The newest schema version this server knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The advisory-lock key of schema migrations (PostgreSQL): 'rc-mig' as bytes. */
const MIGRATION_LOCK = 0x72632d6d6967;

export interface MigrateResult {
  /** The version the database had (0: empty; 1: a registry from before versioned migrations, recognised). */
  from: number;
  to: number;
  /** Versions applied now. */
  applied: number[];
  /** A SQLite registry from before versioned migrations, recognised as version 1. */
  recognised: boolean;
}

export function isPostgres(db: Db): boolean {
  return (db as { dialect?: string }).dialect === 'postgres';
}

/** Bring the database to SCHEMA_VERSION; a SQLite registry from before versioned migrations is upgraded in place first. */
export function migrateSchema(db: Db, o: { now?: () => Date } = {}): MigrateResult {
  const pg = isPostgres(db);
  const now = () => (o.now?.() ?? new Date()).toISOString();
  return db.transaction((): MigrateResult => {
    if (pg) db.prepare('SELECT pg_advisory_xact_lock(?)').get(MIGRATION_LOCK);
    const hadTable = tableExists(db, 'schema_migrations');
    const legacy = !pg && !hadTable && userTables(db) > 0;
    db.exec(
      pg
        ? 'CREATE TABLE IF NOT EXISTS schema_migrations(version bigint PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)'
        : 'CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const record = db.prepare('INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)');
    let recognised = false;
    if (legacy) {
      migrateLegacyRegistry(db);
      record.run(1, registry1.name, now());
      recognised = true;
    }
    const from = (db.prepare('SELECT max(version) FROM schema_migrations').pluck().get() as number | null) ?? 0;
    if (from > SCHEMA_VERSION)
      throw new RcError(ErrorCode.DbSchemaNewer, `the registry's schema is version ${from}, newer than this server's (${SCHEMA_VERSION})`, {
        version: from,
        known: SCHEMA_VERSION,
      });
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      db.exec(pg ? m.postgres : m.sqlite);
      record.run(m.version, m.name, now());
      applied.push(m.version);
    }
    return { from, to: SCHEMA_VERSION, applied, recognised };
  })();
}

/** The versions recorded in schema_migrations, oldest first. */
export function appliedMigrations(db: Db): { version: number; name: string; applied_at: string }[] {
  return db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as {
    version: number;
    name: string;
    applied_at: string;
  }[];
}

function tableExists(db: Db, name: string): boolean {
  const sql = isPostgres(db)
    ? 'SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?'
    : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?";
  return db.prepare(sql).get(name) !== undefined;
}

function userTables(db: Db): number {
  return db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().get() as number;
}
