import type { Db } from '../registry.js';

/**
 * The registry tables of the bank API (issue 15 item 3), created on every open:
 *  - banks: who may connect cards (callback URL and its HMAC secret, kept as the guardians' webhook secret is);
 *  - bank_certs: each bank's client certificates by SHA-256 fingerprint (the bank's identity; revoked_at refuses it);
 *    trust_pem: what the bank listener must trust for a certificate the bank brought (its own CA, or the certificate
 *    itself when self-signed); null for certificates issued from the bank CA;
 *  - bank_requests: the answer stored per (bank, Idempotency-Key) with a hash of the request as tokenised (never the PAN),
 *    kept for the replay window (retention.ts: 24 h by default);
 *  - bank_connections: each accepted connection request and its status (token and masked PAN only);
 *  - bank_outbox: status callbacks owed to banks, written in the transaction of the change (at least once, event id);
 *    a delivered one is purged after 30 days by default (retention.ts), an undelivered one never.
 */
const BANK_SCHEMA = `
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

export function ensureBankSchema(db: Db): void {
  db.exec(BANK_SCHEMA);
}
