import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The operator's registry: one SQLite file under the data dir.
 * Holds the source data (cards by person, benefits, enrolments, stop-list),
 * the materialised lists as encoded records per (scope, token), the published
 * versions (deltas, snapshot chunks, manifests), devices and the journal.
 * PANs are never stored: cards hold the token only.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cards(person_id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, key_version INTEGER NOT NULL, expiry TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS benefits(person_id TEXT NOT NULL, category TEXT NOT NULL, valid_from TEXT NOT NULL, valid_to TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS benefits_person ON benefits(person_id);
CREATE TABLE IF NOT EXISTS enrolments(person_id TEXT NOT NULL, school_id TEXT NOT NULL, role TEXT NOT NULL, grade INTEGER, meal_category TEXT, valid_from TEXT NOT NULL, valid_to TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS enrolments_person ON enrolments(person_id);
CREATE TABLE IF NOT EXISTS stoplist(token TEXT PRIMARY KEY, reason TEXT NOT NULL, since TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries(scope TEXT NOT NULL, token TEXT NOT NULL, rec BLOB NOT NULL, PRIMARY KEY(scope, token)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scopes(scope TEXT PRIMARY KEY, version INTEGER NOT NULL, entries INTEGER NOT NULL, records INTEGER NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deltas(scope TEXT NOT NULL, from_v INTEGER NOT NULL, to_v INTEGER NOT NULL, sha256 TEXT NOT NULL, records INTEGER NOT NULL, created_ms INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY(scope, to_v));
CREATE TABLE IF NOT EXISTS chunks(scope TEXT NOT NULL, version INTEGER NOT NULL, n INTEGER NOT NULL, records INTEGER NOT NULL, sha256 TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY(scope, version, n));
CREATE TABLE IF NOT EXISTS configs(name TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices(id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, last_seen TEXT, lists TEXT NOT NULL DEFAULT '{}', backlog INTEGER NOT NULL DEFAULT 0, reader TEXT, acked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS journal(device TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, token TEXT, kind TEXT NOT NULL, result TEXT NOT NULL, reason TEXT NOT NULL, fare INTEGER NOT NULL, benefit TEXT, lists TEXT NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY(device, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS charges(device TEXT NOT NULL, seq INTEGER NOT NULL, token TEXT NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT, updated_at TEXT NOT NULL, PRIMARY KEY(device, seq));
CREATE INDEX IF NOT EXISTS charges_status ON charges(status);
CREATE TABLE IF NOT EXISTS decline_tokens(token TEXT PRIMARY KEY) WITHOUT ROWID;
`;

export type Db = Database.Database;

export function openRegistry(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(join(dataDir, 'registry.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -262144'); // 256 MiB: million-row imports stay in memory
  db.pragma('temp_store = MEMORY');
  db.exec(SCHEMA);
  migrateRegistry(db);
  return db;
}

/**
 * Bring stored values of an older registry up to date; each step is idempotent, so it runs on every open.
 *  - gate directions: enrolments before the one direction vocabulary stored `in` / `out`; now `entry` / `exit` (`both` stays).
 */
export function migrateRegistry(db: Db): void {
  const has = (table: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  if (has('device_identities')) {
    db.prepare("UPDATE device_identities SET direction = CASE direction WHEN 'in' THEN 'entry' ELSE 'exit' END WHERE direction IN ('in', 'out')").run();
  }
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
