import { ensureExplicitId } from '../db/sqlite-id.js';
import type { Db } from '../registry.js';

/**
 * The cabinet's tables (openRegistry calls ensureCabinetSchema):
 *  - cabinet_sessions: cardholder sessions, the cookie id's SHA-256 only; deleted at sign-out and expiry. No provider token
 *    is kept (the ESIA tokens live only inside the callback).
 *  - cabinet_logins: sign-ins in flight (state's SHA-256 → nonce, PKCE verifier, where to go), used once, 10 minutes.
 *  - holder_links: the provider's subject (esia:OID, oidc:SUB) → the registry's person_id, made at first sign-in.
 *  - person_snils: HMAC-SHA256(server key, SNILS) → person_id (rc-sync-server identities import); SNILS is never stored in clear.
 *  - holder_cards: the masked PAN, when and how the person's card was connected, and the token it was typed for (the
 *    registry's cards row has the current token; a row from before the token column has NULL there).
 *  - holder_card_history: each card a person had before their current one: its token, its masked PAN when the cabinet,
 *    staff or a bank's API connected it (NULL for a card of a bank file), and until when it was theirs (ms). Written by
 *    triggers on the registry's cards table, so every path that replaces or moves a card records it: the cabinet, staff,
 *    the bank API (cabinet/connect.ts) and the cards import (import.ts). The cabinet shows a holder the trips of these
 *    cards up to that time (queries.ts); rows older than 400 days go at start (service.ts). `id` orders the rows of one
 *    time (a registry made before it existed gets it from the implicit rowid, db/sqlite-id.ts).
 *  - holder_names: a holder's name as the provider gave it (the person's children are named by the guardians import).
 *  - cabinet_attempts: the limits' counted attempts (kind: connect, login-start, login-failure; key: p:PERSON or a:ADDRESS;
 *    when), deleted once outside their window (lock.ts).
 *  - cabinet_locks: the connect lock's locks (key p:PERSON or a:ADDRESS, until when), deleted once past.
 */
const HISTORY_COLUMNS = 'person_id TEXT NOT NULL, token TEXT NOT NULL, masked TEXT, until_ms INTEGER NOT NULL';
const CABINET_SCHEMA = `
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

/** The masked PAN the cabinet knows for the card leaving a person (OLD): only when holder_cards was written for that very card. */
const OLD_MASKED = '(SELECT masked FROM holder_cards WHERE person_id = OLD.person_id AND (token IS NULL OR token = OLD.token))';
const NOW_MS = "CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";
/**
 * A card leaves a person when their cards row gets another token (a new card) or goes (the card moved to another person).
 * A token under another key version is the same card re-tokenised (the cards re-import after a key rotation,
 * docs/token-key.md): its masked number stays the cabinet's, and the trips of both tokens show the one card.
 */
const HISTORY_TRIGGERS = `
CREATE TRIGGER IF NOT EXISTS cards_history_replaced AFTER UPDATE OF token ON cards WHEN OLD.token <> NEW.token BEGIN
  INSERT INTO holder_card_history(person_id, token, masked, until_ms) VALUES (OLD.person_id, OLD.token, ${OLD_MASKED}, ${NOW_MS});
  UPDATE holder_cards SET token = NEW.token WHERE person_id = NEW.person_id AND token = OLD.token AND OLD.key_version <> NEW.key_version;
END;
CREATE TRIGGER IF NOT EXISTS cards_history_removed AFTER DELETE ON cards BEGIN
  INSERT INTO holder_card_history(person_id, token, masked, until_ms) VALUES (OLD.person_id, OLD.token, ${OLD_MASKED}, ${NOW_MS});
END;
`;

export function ensureCabinetSchema(db: Db): void {
  ensureExplicitId(db, 'holder_card_history', HISTORY_COLUMNS, ['cards_history_replaced', 'cards_history_removed']);
  db.exec(CABINET_SCHEMA);
  const cols = db.prepare('PRAGMA table_info(holder_cards)').all() as { name: string }[];
  if (!cols.some((c) => c.name === 'token')) db.exec('ALTER TABLE holder_cards ADD COLUMN token TEXT');
  // the cards table is the registry's (openRegistry creates it before this); a private database without it has no history
  if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cards'").get()) db.exec(HISTORY_TRIGGERS);
}
