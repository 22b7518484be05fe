import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { migrateSchema } from './db/migrations.js';

/**
 * The operator's registry: one SQLite file under the data dir.
 * Holds the source data (cards by person, benefits, enrolments, stop-list),
 * the materialised lists as encoded records per (scope, token), the published
 * versions (deltas, snapshot chunks, manifests), devices, the journal (whole
 * entries with the back office's settlement of each) and the aggregated charges.
 * PANs are never stored: cards hold the token only. Its schema, on SQLite and on PostgreSQL, is db/migrations.ts's.
 */
export type { Db } from './db/types.js';
import type { Db } from './db/types.js';

/** The registry in DATA (registry.sqlite), migrated to the current schema. */
export function openRegistry(dataDir: string): Database.Database {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return openSqliteRegistry(join(dataDir, 'registry.sqlite'));
}

/** The SQLite registry in FILE, tuned for the server and migrated (db/migrations.ts; PostgreSQL: db/open.ts). */
export function openSqliteRegistry(file: string): Database.Database {
  const db = immediateTransactions(new Database(file));
  db.pragma('journal_mode = WAL');
  restrictRegistryFiles(file);
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -262144'); // 256 MiB: million-row imports stay in memory
  db.pragma('temp_store = MEMORY');
  migrateSchema(db);
  return db;
}

/**
 * Two connections write the registry file: the server's thread and the import's worker thread (import-worker.ts). A
 * deferred transaction (SQLite's plain BEGIN) that reads before it writes fails at its first write with
 * SQLITE_BUSY_SNAPSHOT ("database is locked", at once, no busy wait) when the other connection committed since that
 * read: an import failed with server.internal when a device's journal ack was committed in the middle of one of its
 * steps. So every transaction on DB begins IMMEDIATE (takes the write lock first, waiting up to the busy timeout for
 * the other's step), as the device's store does. Nested calls are savepoints as before; `.deferred` stays available.
 */
export function immediateTransactions(db: Database.Database): Database.Database {
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn) => transaction(fn).immediate) as Database.Database['transaction'];
  return db;
}

/**
 * The registry holds tokens, device credentials' hashes and the journal: owner-only (0600) whatever the
 * umask or the mode of an existing data dir. The -wal/-shm files SQLite creates beside it are restricted too.
 */
function restrictRegistryFiles(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
}

export interface ScopeRow {
  scope: string;
  version: number;
  entries: number;
  records: number;
}

export function scopeRows(db: Db): ScopeRow[] {
  return db.prepare('SELECT scope, version, entries, records FROM scopes ORDER BY scope').all() as ScopeRow[];
}

export function currentVersions(db: Db): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of scopeRows(db)) out[r.scope] = r.version;
  return out;
}
