import type { Db } from '../registry.js';

/**
 * The registry tables of guardians and notifications (issue 14 item 2), created on every open:
 *  - guardians: who gets told about which child, over which channel, with consent and the events chosen;
 *  - notify_outbox: one row per message (idempotency key), written in the journal's transaction or the
 *    scheduler's; state pending → sent | failed (permanent) | cancelled (guardian gone or consent withdrawn);
 *  - notify_absent: the "not arrived by HH:MM" check done for a student on a day (once per student per day).
 * A message keeps facts only (child's name as the guardian gave it, school, time, direction, meal): the text
 * is written when it is sent. No PAN, no token, no person_id is ever put in a message.
 */
const NOTIFY_SCHEMA = `
CREATE TABLE IF NOT EXISTS guardians(person_id TEXT NOT NULL, guardian_id TEXT NOT NULL, child_name TEXT NOT NULL, channel TEXT NOT NULL,
  address TEXT NOT NULL, secret TEXT, consent INTEGER NOT NULL, events TEXT NOT NULL, quiet_from TEXT, quiet_to TEXT, updated_at TEXT NOT NULL,
  PRIMARY KEY(person_id, guardian_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_outbox(key TEXT PRIMARY KEY, guardian_id TEXT NOT NULL, person_id TEXT NOT NULL, event TEXT NOT NULL,
  facts TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, last_error TEXT,
  created_ms INTEGER NOT NULL, sent_ms INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox(state, next_ms);
CREATE TABLE IF NOT EXISTS notify_absent(person_id TEXT NOT NULL, day TEXT NOT NULL, checked_ms INTEGER NOT NULL, PRIMARY KEY(person_id, day)) WITHOUT ROWID;
`;

export function ensureNotifySchema(db: Db): void {
  db.exec(NOTIFY_SCHEMA);
}
