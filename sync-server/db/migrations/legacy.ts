import type { Db } from '../types.js';

/**
 * The upgrade of a SQLite registry made before versioned migrations (by the modules' own ensure…Schema functions,
 * which are gone): it brings such a registry, whatever its age, to exactly the schema of migration 1 (as of
 * migration 2's explicit ids, which it also gives), and migrations.ts then records it as version 1 and applies the
 * rest. The code is those functions' as they last were, kept here together and frozen: a schema change is never
 * made here but in a new migration (./NNN-name.ts, both dialects). A test (test/integration/db.test.ts) checks that
 * this upgrade of an empty file makes exactly the schema migrations 1 and 2 make.
 *
 * Every step is idempotent (CREATE … IF NOT EXISTS, a column added when missing), as it ran on every open then:
 *  - the base tables, then the meta('schema') migrations up to 3 (journal columns, aggregated charges, carriers);
 *  - stored values brought up to date (gate directions, the charge retry columns);
 *  - each module's tables: console, accounts and audit, partners, guardians' notifications, settlement's index,
 *    imports, the bank API, the cabinet (with its card history triggers), token schemes, the device tables;
 *  - the tables SQLite ordered by rowid get their explicit id (each row keeping its rowid).
 */
export function migrateLegacyRegistry(db: Db): void {
  db.exec(BASE);
  migrateMetaSchema(db);
  migrateStoredValues(db);
  migrateExplicitId(db, 'console_status_log', STATUS_LOG_COLUMNS);
  db.exec(CONSOLE);
  db.exec(AUTH);
  db.exec(AUDIT);
  migratePartners(db);
  db.exec(NOTIFY);
  db.exec('CREATE INDEX IF NOT EXISTS day_totals_close ON day_totals(closed, service_day, first_ms, first_device, first_seq)');
  db.exec(IMPORT);
  db.exec(BANK);
  migrateCabinet(db);
  migrateTokenSchemes(db);
  migrateDeviceTables(db);
}

const BASE = `
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

const STATUS_LOG_COLUMNS = 'device TEXT NOT NULL, at TEXT NOT NULL, online INTEGER NOT NULL, backlog INTEGER NOT NULL, lists TEXT NOT NULL, reader TEXT';
const CONSOLE = `
CREATE TABLE IF NOT EXISTS console_status_log(id INTEGER PRIMARY KEY, ${STATUS_LOG_COLUMNS});
CREATE INDEX IF NOT EXISTS console_status_log_device ON console_status_log(device, at);
CREATE TABLE IF NOT EXISTS console_stop_masks(token TEXT PRIMARY KEY, masked TEXT NOT NULL) WITHOUT ROWID;
`;

const AUTH = `
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, role TEXT NOT NULL, school TEXT, carrier TEXT, password TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, disabled_at TEXT);
CREATE TABLE IF NOT EXISTS sessions(id_hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS api_tokens(id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL, school TEXT, carrier TEXT, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT);
`;

const AUDIT = `
CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, who TEXT NOT NULL, role TEXT, source TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, result TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`;

const NOTIFY = `
CREATE TABLE IF NOT EXISTS guardians(person_id TEXT NOT NULL, guardian_id TEXT NOT NULL, child_name TEXT NOT NULL, channel TEXT NOT NULL,
  address TEXT NOT NULL, secret TEXT, consent INTEGER NOT NULL, events TEXT NOT NULL, quiet_from TEXT, quiet_to TEXT, updated_at TEXT NOT NULL,
  PRIMARY KEY(person_id, guardian_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_outbox(key TEXT PRIMARY KEY, guardian_id TEXT NOT NULL, person_id TEXT NOT NULL, event TEXT NOT NULL,
  facts TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, last_error TEXT,
  created_ms INTEGER NOT NULL, sent_ms INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox(state, next_ms);
CREATE TABLE IF NOT EXISTS notify_absent(person_id TEXT NOT NULL, day TEXT NOT NULL, checked_ms INTEGER NOT NULL, PRIMARY KEY(person_id, day)) WITHOUT ROWID;
`;

const IMPORT = `
CREATE TABLE IF NOT EXISTS imports(id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, state TEXT NOT NULL, phase TEXT NOT NULL,
  rows INTEGER NOT NULL DEFAULT 0, applied INTEGER, rejected INTEGER, today TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, error TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS import_stage(seq INTEGER PRIMARY KEY, first INTEGER NOT NULL, a, b, c, d, e, f, g);
`;

const BANK = `
CREATE TABLE IF NOT EXISTS banks(id TEXT PRIMARY KEY, name TEXT NOT NULL, site TEXT, callback_url TEXT, callback_secret TEXT,
  since TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bank_certs(fingerprint TEXT PRIMARY KEY, bank_id TEXT NOT NULL, subject TEXT NOT NULL, not_after TEXT NOT NULL,
  trust_pem TEXT, added_at TEXT NOT NULL, revoked_at TEXT) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bank_certs_bank ON bank_certs(bank_id);
CREATE TABLE IF NOT EXISTS bank_requests(bank_id TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, status INTEGER NOT NULL,
  answer TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY(bank_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bank_requests_created ON bank_requests(created_at);
CREATE TABLE IF NOT EXISTS bank_connections(id TEXT PRIMARY KEY, bank_id TEXT NOT NULL, person_id TEXT NOT NULL, token TEXT NOT NULL,
  masked TEXT NOT NULL, expiry TEXT NOT NULL, result TEXT NOT NULL, previous_masked TEXT, status TEXT NOT NULL, list_version INTEGER,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bank_connections_open ON bank_connections(status);
CREATE INDEX IF NOT EXISTS bank_connections_token ON bank_connections(token);
CREATE TABLE IF NOT EXISTS bank_outbox(event_id TEXT PRIMARY KEY, bank_id TEXT NOT NULL, connection_id TEXT NOT NULL, body TEXT NOT NULL,
  state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, last_error TEXT, created_ms INTEGER NOT NULL,
  sent_ms INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bank_outbox_due ON bank_outbox(state, next_ms);
`;

const HISTORY_COLUMNS = 'person_id TEXT NOT NULL, token TEXT NOT NULL, masked TEXT, until_ms INTEGER NOT NULL';
const CABINET = `
CREATE TABLE IF NOT EXISTS cabinet_sessions(id_hash TEXT PRIMARY KEY, person_id TEXT NOT NULL, subject TEXT NOT NULL, name TEXT NOT NULL, esia INTEGER NOT NULL, created_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cabinet_sessions_person ON cabinet_sessions(person_id);
CREATE TABLE IF NOT EXISTS cabinet_logins(state_hash TEXT PRIMARY KEY, nonce TEXT NOT NULL, verifier TEXT NOT NULL, next TEXT NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holder_links(subject TEXT PRIMARY KEY, person_id TEXT NOT NULL, created_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS person_snils(snils_hash TEXT PRIMARY KEY, person_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holder_cards(person_id TEXT PRIMARY KEY, masked TEXT NOT NULL, connected_at TEXT NOT NULL, via TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holder_card_history(id INTEGER PRIMARY KEY, ${HISTORY_COLUMNS});
CREATE INDEX IF NOT EXISTS holder_card_history_person ON holder_card_history(person_id, until_ms);
CREATE INDEX IF NOT EXISTS holder_card_history_token ON holder_card_history(token, until_ms);
CREATE TABLE IF NOT EXISTS cabinet_attempts(kind TEXT NOT NULL, key TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS cabinet_attempts_key ON cabinet_attempts(kind, key, at_ms);
CREATE INDEX IF NOT EXISTS cabinet_attempts_at ON cabinet_attempts(kind, at_ms);
CREATE TABLE IF NOT EXISTS cabinet_locks(kind TEXT NOT NULL, key TEXT NOT NULL, until_ms INTEGER NOT NULL, PRIMARY KEY(kind, key)) WITHOUT ROWID;
`;

const OLD_MASKED = '(SELECT masked FROM holder_cards WHERE person_id = OLD.person_id AND (token IS NULL OR token = OLD.token))';
const NOW_MS = "CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";
const HISTORY_TRIGGERS = `
CREATE TRIGGER IF NOT EXISTS cards_history_replaced AFTER UPDATE OF token ON cards WHEN OLD.token <> NEW.token BEGIN
  INSERT INTO holder_card_history(person_id, token, masked, until_ms) VALUES (OLD.person_id, OLD.token, ${OLD_MASKED}, ${NOW_MS});
  UPDATE holder_cards SET token = NEW.token WHERE person_id = NEW.person_id AND token = OLD.token AND OLD.key_version <> NEW.key_version;
END;
CREATE TRIGGER IF NOT EXISTS cards_history_removed AFTER DELETE ON cards BEGIN
  INSERT INTO holder_card_history(person_id, token, masked, until_ms) VALUES (OLD.person_id, OLD.token, ${OLD_MASKED}, ${NOW_MS});
END;
`;

const DEVICES = `
CREATE TABLE IF NOT EXISTS enrol_tokens(hash TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, school TEXT, route TEXT, created_at TEXT NOT NULL, expires_ms INTEGER NOT NULL, used_at TEXT, device TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proof_nonces(nonce TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_identities(id TEXT PRIMARY KEY, kind TEXT NOT NULL, school TEXT, route TEXT, vehicle TEXT, direction TEXT, scopes TEXT NOT NULL, identity_key TEXT NOT NULL, box_key TEXT NOT NULL, pw_hash TEXT NOT NULL, mosq_hash TEXT NOT NULL, enrolled_at TEXT NOT NULL, rotated_at TEXT, revoked_at TEXT, token_id TEXT NOT NULL) WITHOUT ROWID;
`;

/**
 * Bring stored values of an older registry up to date; each step is idempotent, so it runs on every open.
 *  - gate directions: enrolments before the one direction vocabulary stored `in` / `out`; now `entry` / `exit` (`both` stays).
 *  - charges: columns `attempts` and `retry_at` of the charge retry policy.
 */
function migrateStoredValues(db: Db): void {
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

/** The registry's schema version of that era, kept in meta('schema'); a registry without it is version 1. */
export const REGISTRY_SCHEMA = 3;

/**
 * Migrations by meta('schema'), each in one transaction:
 *  1 → 2  the journal keeps the whole entry (route, vehicle, direction, reader, meal, flags,
 *         effective time, service day) and the back office's settlement of it; charging becomes
 *         one aggregated charge per card and service day (`charges`), the per-tap charges of
 *         version 1 stay in `charges_v1` (their declines are still repaid). Days charged tap by
 *         tap under version 1 are marked as such and never charged again.
 */
function migrateMetaSchema(db: Db): void {
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

/** The partner table, and a `partner` column on enrolment tokens and device identities (when those tables exist). */
function migratePartners(db: Db): void {
  db.exec(`
CREATE TABLE IF NOT EXISTS partners(id TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, discount_percent INTEGER NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
`);
  for (const table of ['enrol_tokens', 'device_identities']) {
    const cols = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
    if (cols.length > 0 && !cols.some((c) => c.name === 'partner')) db.exec(`ALTER TABLE ${table} ADD COLUMN partner TEXT`);
  }
}

function migrateCabinet(db: Db): void {
  migrateExplicitId(db, 'holder_card_history', HISTORY_COLUMNS, ['cards_history_replaced', 'cards_history_removed']);
  db.exec(CABINET);
  const cols = db.prepare('PRAGMA table_info(holder_cards)').all() as { name: string }[];
  if (!cols.some((c) => c.name === 'token')) db.exec('ALTER TABLE holder_cards ADD COLUMN token TEXT');
  db.exec(HISTORY_TRIGGERS);
}

/**
 * Token schemes: a registry from before the table existed made all its tokens with PAN ‖ PSN, so when the table is
 * created every key version its cards hold is recorded as pan-psn (docs/token-key.md).
 */
function migrateTokenSchemes(db: Db): void {
  db.exec('CREATE TABLE IF NOT EXISTS token_key_retired(version INTEGER PRIMARY KEY, retired_at TEXT NOT NULL, retired_by TEXT NOT NULL)');
  const existed = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'token_key_schemes'").get() !== undefined;
  if (existed) return;
  db.exec('CREATE TABLE token_key_schemes(version INTEGER PRIMARY KEY, scheme TEXT NOT NULL, recorded_at TEXT NOT NULL)');
  db.prepare("INSERT INTO token_key_schemes(version, scheme, recorded_at) SELECT DISTINCT key_version, 'pan-psn', ? FROM cards").run(new Date().toISOString());
}

/** Enrolment tokens and device identities, with the NATS bcrypt column and the partner columns. */
function migrateDeviceTables(db: Db): void {
  db.exec(DEVICES);
  const cols = db.prepare('PRAGMA table_info(device_identities)').all() as { name: string }[];
  if (!cols.some((c) => c.name === 'nats_hash')) db.exec('ALTER TABLE device_identities ADD COLUMN nats_hash TEXT');
  migratePartners(db);
}

/**
 * A table whose rows SQLite ordered by insertion gets an explicit `id INTEGER PRIMARY KEY` in place of the implicit
 * rowid (an alias of it: the values, so the order, stay); a table that has the column (or does not exist) is left
 * alone. `triggers` naming the table are dropped first (SQLite's RENAME refuses a schema whose triggers name a table
 * that is gone for the moment); their owner makes them again after this.
 */
function migrateExplicitId(db: Db, table: string, columns: string, triggers: readonly string[] = []): void {
  const cols = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
  if (cols.length === 0 || cols.some((c) => c.name === 'id')) return;
  const names = cols.map((c) => c.name).join(', ');
  for (const t of triggers) db.exec(`DROP TRIGGER IF EXISTS ${t}`);
  db.exec(`CREATE TABLE ${table}_with_id(id INTEGER PRIMARY KEY, ${columns})`);
  db.exec(`INSERT INTO ${table}_with_id(id, ${names}) SELECT rowid, ${names} FROM ${table} ORDER BY rowid`);
  db.exec(`DROP TABLE ${table}`);
  db.exec(`ALTER TABLE ${table}_with_id RENAME TO ${table}`);
}
