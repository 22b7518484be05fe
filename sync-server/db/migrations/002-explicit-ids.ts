import type { Migration } from '../migrations.js';

const TRIGGER_MASKED = '(SELECT masked FROM holder_cards WHERE person_id = OLD.person_id AND (token IS NULL OR token = OLD.token))';
const TRIGGER_NOW_MS = "CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";

/**
 * Migration 2: the two tables SQLite ordered by its implicit rowid get an explicit `id INTEGER PRIMARY KEY` (an alias
 * of rowid: each row keeps its rowid as id, so the order stays), so the same statements run on PostgreSQL, whose
 * migration 1 already gave them an identity column. The rows go through a copy so the tables end up made by the very
 * CREATE TABLE the modules use (a RENAME would leave a quoted name in sqlite_master); the history triggers name
 * holder_card_history, so they are dropped first and made again. On a registry whose upgrade already added the
 * column (./legacy.ts migrateExplicitId) this changes nothing but the copy. PostgreSQL: nothing to do.
 */
export const explicitIds2: Migration = {
  version: 2,
  name: 'explicit-ids',
  sqlite: `
DROP TRIGGER IF EXISTS cards_history_replaced;
DROP TRIGGER IF EXISTS cards_history_removed;
CREATE TEMP TABLE m2_status AS SELECT rowid AS id, device, at, online, backlog, lists, reader FROM console_status_log;
DROP TABLE console_status_log;
CREATE TABLE console_status_log(id INTEGER PRIMARY KEY, device TEXT NOT NULL, at TEXT NOT NULL, online INTEGER NOT NULL, backlog INTEGER NOT NULL, lists TEXT NOT NULL, reader TEXT);
INSERT INTO console_status_log(id, device, at, online, backlog, lists, reader) SELECT id, device, at, online, backlog, lists, reader FROM m2_status ORDER BY id;
DROP TABLE m2_status;
CREATE INDEX console_status_log_device ON console_status_log(device, at);
CREATE TEMP TABLE m2_history AS SELECT rowid AS id, person_id, token, masked, until_ms FROM holder_card_history;
DROP TABLE holder_card_history;
CREATE TABLE holder_card_history(id INTEGER PRIMARY KEY, person_id TEXT NOT NULL, token TEXT NOT NULL, masked TEXT, until_ms INTEGER NOT NULL);
INSERT INTO holder_card_history(id, person_id, token, masked, until_ms) SELECT id, person_id, token, masked, until_ms FROM m2_history ORDER BY id;
DROP TABLE m2_history;
CREATE INDEX holder_card_history_person ON holder_card_history(person_id, until_ms);
CREATE INDEX holder_card_history_token ON holder_card_history(token, until_ms);
CREATE TRIGGER cards_history_replaced AFTER UPDATE OF token ON cards WHEN OLD.token <> NEW.token BEGIN
  INSERT INTO holder_card_history(person_id, token, masked, until_ms) VALUES (OLD.person_id, OLD.token, ${TRIGGER_MASKED}, ${TRIGGER_NOW_MS});
  UPDATE holder_cards SET token = NEW.token WHERE person_id = NEW.person_id AND token = OLD.token AND OLD.key_version <> NEW.key_version;
END;
CREATE TRIGGER cards_history_removed AFTER DELETE ON cards BEGIN
  INSERT INTO holder_card_history(person_id, token, masked, until_ms) VALUES (OLD.person_id, OLD.token, ${TRIGGER_MASKED}, ${TRIGGER_NOW_MS});
END;
`,
  postgres: `SELECT 1;`,
};
