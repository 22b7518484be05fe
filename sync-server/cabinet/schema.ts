import type { Db } from '../registry.js';

/**
 * The cabinet's tables (openRegistry calls ensureCabinetSchema):
 *  - cabinet_sessions: cardholder sessions, the cookie id's SHA-256 only; deleted at sign-out and expiry. No provider token
 *    is kept (the ESIA tokens live only inside the callback).
 *  - cabinet_logins: sign-ins in flight (state's SHA-256 → nonce, PKCE verifier, where to go), used once, 10 minutes.
 *  - holder_links: the provider's subject (esia:OID, oidc:SUB) → the registry's person_id, made at first sign-in.
 *  - person_snils: HMAC-SHA256(server key, SNILS) → person_id (rc-sync-server identities import); SNILS is never stored in clear.
 *  - holder_cards: the masked PAN, when and how the person's card was connected (the registry's cards row has the token).
 *  - holder_names: a holder's name as the provider gave it (the person's children are named by the guardians import).
 *  - cabinet_attempts: the limits' counted attempts (kind: connect, login-start, login-failure; key: p:PERSON or a:ADDRESS;
 *    when), deleted once outside their window (lock.ts).
 *  - cabinet_locks: the connect lock's locks (key p:PERSON or a:ADDRESS, until when), deleted once past.
 */
const CABINET_SCHEMA = `
CREATE TABLE IF NOT EXISTS cabinet_sessions(id_hash TEXT PRIMARY KEY, person_id TEXT NOT NULL, subject TEXT NOT NULL, name TEXT NOT NULL, esia INTEGER NOT NULL, created_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cabinet_sessions_person ON cabinet_sessions(person_id);
CREATE TABLE IF NOT EXISTS cabinet_logins(state_hash TEXT PRIMARY KEY, nonce TEXT NOT NULL, verifier TEXT NOT NULL, next TEXT NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holder_links(subject TEXT PRIMARY KEY, person_id TEXT NOT NULL, created_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS person_snils(snils_hash TEXT PRIMARY KEY, person_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holder_cards(person_id TEXT PRIMARY KEY, masked TEXT NOT NULL, connected_at TEXT NOT NULL, via TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cabinet_attempts(kind TEXT NOT NULL, key TEXT NOT NULL, at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS cabinet_attempts_key ON cabinet_attempts(kind, key, at_ms);
CREATE INDEX IF NOT EXISTS cabinet_attempts_at ON cabinet_attempts(kind, at_ms);
CREATE TABLE IF NOT EXISTS cabinet_locks(kind TEXT NOT NULL, key TEXT NOT NULL, until_ms INTEGER NOT NULL, PRIMARY KEY(kind, key)) WITHOUT ROWID;
`;

export function ensureCabinetSchema(db: Db): void {
  db.exec(CABINET_SCHEMA);
}
