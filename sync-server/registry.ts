import { ensureCabinetSchema } from './cabinet/schema.js';
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureConsoleSchema } from './console/store.js';
import { ensureAuthSchema } from './auth/schema.js';
import { ensurePartnerSchema } from './partners.js';
import { ensureNotifySchema } from './notify/schema.js';
import { ensureSettlementSchema } from './settlement/schema.js';
import { ensureImportSchema } from './import-stage.js';
import { ensureBankSchema } from './bank/schema.js';
import { ensureTokenSchemeSchema } from './tokenize.js';
import { initDeviceTables } from './devices.js';
import { migrateSchema } from './db/migrations.js';

/**
 * The operator's registry: one SQLite file under the data dir.
 * Holds the source data (cards by person, benefits, enrolments, stop-list),
 * the materialised lists as encoded records per (scope, token), the published
 * versions (deltas, snapshot chunks, manifests), devices, the journal (whole
 * entries with the back office's settlement of each) and the aggregated charges.
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
CREATE TABLE IF NOT EXISTS decline_tokens(token TEXT PRIMARY KEY) WITHOUT ROWID;
`;

export type { Db } from './db/types.js';
import type { Db } from './db/types.js';

/** The registry in DATA (registry.sqlite), migrated to the current schema. */
export function openRegistry(dataDir: string): Database.Database {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return openSqliteRegistry(join(dataDir, 'registry.sqlite'));
}

/** The SQLite registry in FILE, tuned for the server and migrated (db/migrations.ts; PostgreSQL: db/open.ts). */
export function openSqliteRegistry(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  restrictRegistryFiles(file);
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -262144'); // 256 MiB: million-row imports stay in memory
  db.pragma('temp_store = MEMORY');
  migrateSchema(db, { legacy: ensureRegistrySchema });
  // transitional, SQLite only: the modules' own ensure*Schema still run (idempotent, nothing to do on a migrated
  // registry) until every schema change is a migration; PostgreSQL's schema comes only from db/migrations
  ensureRegistrySchema(db);
  return db;
}

/**
 * The schema as the modules make it (CREATE … IF NOT EXISTS, and the meta('schema') and migrateRegistry steps of
 * older registries): what a registry from before versioned migrations is upgraded with before it is recorded as
 * version 1. Migration 1 (db/migrations/001-registry.ts) is exactly its result on an empty file (a test checks that).
 */
export function ensureRegistrySchema(db: Db): void {
  db.exec(SCHEMA);
  migrate(db);
  migrateRegistry(db);
  ensureConsoleSchema(db);
  ensureAuthSchema(db);
  ensurePartnerSchema(db);
  ensureNotifySchema(db);
  ensureSettlementSchema(db);
  ensureImportSchema(db);
  ensureBankSchema(db);
  ensureCabinetSchema(db);
  ensureTokenSchemeSchema(db);
  initDeviceTables(db);
}

/**
 * The registry holds tokens, device credentials' hashes and the journal: owner-only (0600) whatever the
 * umask or the mode of an existing data dir. The -wal/-shm files SQLite creates beside it are restricted too.
 */
function restrictRegistryFiles(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
}

/**
 * Bring stored values of an older registry up to date; each step is idempotent, so it runs on every open.
 *  - gate directions: enrolments before the one direction vocabulary stored `in` / `out`; now `entry` / `exit` (`both` stays).
 *  - charges: columns `attempts` and `retry_at` of the charge retry policy.
 */
export function migrateRegistry(db: Db): void {
  const has = (table: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  if (has('device_identities')) {
    db.prepare("UPDATE device_identities SET direction = CASE direction WHEN 'in' THEN 'entry' ELSE 'exit' END WHERE direction IN ('in', 'out')").run();
  }
  //  - charge retries: how often a charge was tried, and when it is tried next (charging.ts RetryPolicy)
  const cols = (table: string) => new Set((db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
  if (has('charges')) {
    const c = cols('charges');
    if (!c.has('attempts')) db.exec('ALTER TABLE charges ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0');
    if (!c.has('retry_at')) db.exec('ALTER TABLE charges ADD COLUMN retry_at TEXT');
  }
}

/** The registry's schema version, kept in meta('schema'); a registry without it is version 1. */
export const REGISTRY_SCHEMA = 3;

/**
 * Migrations by meta('schema'), each in one transaction:
 *  1 → 2  the journal keeps the whole entry (route, vehicle, direction, reader, meal, flags,
 *         effective time, service day) and the back office's settlement of it; charging becomes
 *         one aggregated charge per card and service day (`charges`), the per-tap charges of
 *         version 1 stay in `charges_v1` (their declines are still repaid). Days charged tap by
 *         tap under version 1 are marked as such and never charged again.
 */
function migrate(db: Db): void {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get() as string | undefined;
  const hasV1Charges = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'charges'").get() !== undefined;
  let v = row !== undefined ? Number(row) : hasV1Charges ? 1 : 0;
  if (v > REGISTRY_SCHEMA) throw new Error(`registry schema ${v} is newer than this server (${REGISTRY_SCHEMA})`);
  db.transaction(() => {
    if (v === 0) {
      db.exec(JOURNAL_V2 + CHARGES_V2 + CARRIERS_V3);
      v = REGISTRY_SCHEMA;
    }
    if (v === 1) {
      migrate1to2(db);
      v = 2;
    }
    if (v === 2) {
      db.exec(CARRIERS_V3);
      v = 3;
    }
    db.prepare("INSERT INTO meta(key, value) VALUES ('schema', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(v));
  })();
}

/** Journal columns and tables of schema 2 (on a new registry, and added to a version-1 one). */
const JOURNAL_COLUMNS = [
  'route TEXT',
  'vehicle TEXT',
  'direction TEXT',
  'reader TEXT',
  'meal TEXT',
  "flags TEXT NOT NULL DEFAULT '[]'",
  'eff_ms INTEGER NOT NULL DEFAULT 0',
  "service_day TEXT NOT NULL DEFAULT ''",
  'settled_fare INTEGER',
  'settled_reason TEXT',
  'settle_code TEXT',
];
const JOURNAL_V2 = `
${JOURNAL_COLUMNS.map((c) => `ALTER TABLE journal ADD COLUMN ${c};`).join('\n')}
CREATE INDEX IF NOT EXISTS journal_token ON journal(token, eff_ms);
CREATE INDEX IF NOT EXISTS journal_time ON journal(eff_ms);
CREATE INDEX IF NOT EXISTS journal_flagged ON journal(settle_code) WHERE settle_code IS NOT NULL;
CREATE TABLE IF NOT EXISTS settle_dirty(token TEXT NOT NULL, day TEXT NOT NULL, PRIMARY KEY(token, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS adjustments(token TEXT NOT NULL, service_day TEXT NOT NULL, device TEXT, seq INTEGER, kind TEXT NOT NULL,
  device_fare INTEGER NOT NULL, device_reason TEXT, settled_fare INTEGER NOT NULL, settled_reason TEXT, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS adjustments_day ON adjustments(token, service_day);
CREATE TABLE IF NOT EXISTS day_totals(token TEXT NOT NULL, service_day TEXT NOT NULL, amount INTEGER NOT NULL, taps INTEGER NOT NULL,
  first_ms INTEGER NOT NULL, first_device TEXT NOT NULL, first_seq INTEGER NOT NULL, closed INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(token, service_day)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS day_totals_open ON day_totals(closed, service_day);
`;
const CHARGES_V2 = `
CREATE TABLE IF NOT EXISTS charges(seq INTEGER PRIMARY KEY, token TEXT NOT NULL, service_day TEXT NOT NULL, amount INTEGER NOT NULL, taps INTEGER NOT NULL,
  status TEXT NOT NULL, reason TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE(token, service_day));
CREATE INDEX IF NOT EXISTS charges_status ON charges(status);
`;

/** Schema 3: carriers and the carrier of each route from a date (the latest valid_from on or before a day wins). */
const CARRIERS_V3 = `
CREATE TABLE IF NOT EXISTS carriers(id TEXT PRIMARY KEY, name TEXT NOT NULL, inn TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS route_carriers(route_id TEXT NOT NULL, valid_from TEXT NOT NULL, carrier_id TEXT NOT NULL, PRIMARY KEY(route_id, valid_from)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS route_carriers_carrier ON route_carriers(carrier_id);
CREATE INDEX IF NOT EXISTS journal_report ON journal(service_day, route, benefit, settle_code, settled_reason, settled_fare, received_at) WHERE kind = 'bus';
`;

function migrate1to2(db: Db): void {
  db.exec('ALTER TABLE charges RENAME TO charges_v1; DROP INDEX IF EXISTS charges_status;');
  db.exec(JOURNAL_V2 + CHARGES_V2);
  // entries of version 1 lost their route and vehicle: they keep the device's decision as settled,
  // and their (token, UTC day) is charged as it was, tap by tap (status 'v1' is never charged again)
  const rows = db.prepare('SELECT device, seq, time FROM journal').all() as { device: string; seq: number; time: string }[];
  const set = db.prepare('UPDATE journal SET eff_ms = ?, service_day = ?, settled_fare = fare, settled_reason = reason WHERE device = ? AND seq = ?');
  for (const r of rows) {
    const ms = Date.parse(r.time);
    set.run(ms, new Date(ms).toISOString().slice(0, 10), r.device, r.seq);
  }
  const now = new Date().toISOString();
  db.prepare(
    `INSERT OR IGNORE INTO charges(token, service_day, amount, taps, status, reason, created_at, updated_at)
     SELECT j.token, j.service_day,
       CASE WHEN sum(c.status = 'pending') > 0 THEN sum(CASE WHEN c.status = 'pending' THEN c.amount ELSE 0 END) ELSE sum(c.amount) END,
       count(*), CASE WHEN sum(c.status = 'pending') > 0 THEN 'pending' ELSE 'v1' END, NULL, ?, ?
     FROM charges_v1 c JOIN journal j ON j.device = c.device AND j.seq = c.seq GROUP BY j.token, j.service_day ORDER BY min(j.eff_ms)`,
  ).run(now, now);
  db.exec("UPDATE charges_v1 SET status = 'aggregated' WHERE status = 'pending'");
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
