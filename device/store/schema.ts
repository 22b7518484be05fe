import type Database from 'better-sqlite3';

/**
 * Schema migrations of the device store, by PRAGMA user_version:
 * `MIGRATIONS[i]` upgrades a database at version i to i+1, in place, inside one
 * transaction. Append only. A database newer than the code is refused
 * (store.schema-too-new).
 */
export const MIGRATIONS: Array<(db: Database.Database) => void> = [
  // 0 → 1
  (db) => {
    db.exec(`
      -- journal_seq: the last seq as of the last prune (the journal's own max(seq) is newer); acked_seq; next_gen
      CREATE TABLE meta (key TEXT PRIMARY KEY, value) ;
      -- one row per scope: its version and the generation of entries that is visible
      CREATE TABLE scopes (scope TEXT PRIMARY KEY, version INTEGER NOT NULL, gen INTEGER NOT NULL, applied_ms INTEGER NOT NULL);
      -- generations of a scope's entries, each in its own table list_<gen> (token BLOB 16 bytes,
      -- data TEXT: the rest of the entry, compact (codec.ts); unique index on token):
      -- 'staging' (being written, invisible), 'active' (the one scopes points to), 'garbage' (to drop)
      CREATE TABLE gens (gen INTEGER PRIMARY KEY, scope TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL);
      -- counters per token per period (quota trips this month, fares today, meals today)
      CREATE TABLE counters (token BLOB NOT NULL, name TEXT NOT NULL, period TEXT NOT NULL, value INTEGER NOT NULL,
                             PRIMARY KEY (token, name, period)) WITHOUT ROWID;
      -- per token: clock anchor and last events (repeat, transfer, anti-passback)
      CREATE TABLE marks (token BLOB PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
      -- the journal: one row per decision, seq without gaps
      CREATE TABLE journal (
        seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, eff_ms INTEGER NOT NULL, device TEXT NOT NULL,
        token BLOB NOT NULL, kind TEXT NOT NULL, direction TEXT, reader TEXT, result TEXT NOT NULL, reason TEXT NOT NULL,
        fare INTEGER NOT NULL, benefit TEXT, lists TEXT NOT NULL, extra TEXT NOT NULL);
      INSERT INTO meta (key, value) VALUES ('journal_seq', 0), ('acked_seq', 0), ('next_gen', 1);
    `);
  },
  // 1 → 2: fleet usage (issue 10 item 4)
  (db) => {
    db.exec(`
      -- the fleet usage held: its version, the service day it counts, this device's watermark (highest own seq the server counted)
      CREATE TABLE usage_state (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, date TEXT, start_ms INTEGER, watermark INTEGER NOT NULL);
      -- one row per card active fleet-wide: quota used this period, fares today, the last paid tap (route index in the sorted tariff routes)
      CREATE TABLE usage_cards (token BLOB PRIMARY KEY, quota_cat TEXT, quota_used INTEGER NOT NULL, fare_today INTEGER NOT NULL,
                                lp_eff INTEGER, lp_route INTEGER NOT NULL, lp_transfers INTEGER NOT NULL) WITHOUT ROWID;
      -- per own tap: the counter additions it made, until the server's watermark passes its seq
      CREATE TABLE usage_adds (seq INTEGER PRIMARY KEY, token BLOB NOT NULL, adds TEXT NOT NULL);
      CREATE INDEX usage_adds_token ON usage_adds (token, seq);
    `);
  },
];

export const CURRENT_STORE_SCHEMA = MIGRATIONS.length;

/** The store's own counters in table meta (numbers by key). */
export type MetaKey = 'journal_seq' | 'acked_seq' | 'next_gen';

export class Meta {
  private readonly getSt: Database.Statement;
  private readonly setSt: Database.Statement;
  constructor(db: Database.Database) {
    this.getSt = db.prepare('SELECT value FROM meta WHERE key = ?');
    this.setSt = db.prepare('UPDATE meta SET value = ? WHERE key = ?');
  }
  get(key: MetaKey): number {
    return Number((this.getSt.get(key) as { value: number }).value);
  }
  set(key: MetaKey, value: number): void {
    this.setSt.run(value, key);
  }
}
