import type { Db } from '../registry.js';

/**
 * How long the bank API keeps what it stores per request and per callback (docs/bank-api.md, "Retention"):
 *  - an Idempotency-Key record (bank_requests) for `idempotencyMs` after the request (24 h, as most bank APIs keep
 *    theirs): inside that window a replay gets the stored answer; after it the key is forgotten, and a request with
 *    it is a new request;
 *  - a delivered status callback (bank_outbox, state 'sent') for `deliveredDays` after its delivery; a callback not
 *    delivered (pending, or given up: failed) is never purged, so `bank list` keeps counting it.
 * The purge runs when the bank service starts and every `intervalMs` (an hour) after.
 */
export interface RetentionOptions {
  idempotencyMs: number;
  deliveredDays: number;
  intervalMs: number;
}

export const DEFAULT_RETENTION: RetentionOptions = { idempotencyMs: 24 * 3_600_000, deliveredDays: 30, intervalMs: 3_600_000 };

export interface Purged {
  requests: number;
  callbacks: number;
}

/** The oldest created_at an Idempotency-Key record may have and still be answered from (ISO, as bank_requests stores it). */
export function idempotencyCutoff(now: number, o: Pick<RetentionOptions, 'idempotencyMs'>): string {
  return new Date(now - o.idempotencyMs).toISOString();
}

/** Delete the Idempotency-Key records past their window and the callbacks delivered more than deliveredDays ago, in one transaction. */
export function purgeBankRecords(db: Db, now: number, o: RetentionOptions = DEFAULT_RETENTION): Purged {
  return db.transaction(() => ({
    requests: db.prepare('DELETE FROM bank_requests WHERE created_at < ?').run(idempotencyCutoff(now, o)).changes,
    callbacks: db.prepare("DELETE FROM bank_outbox WHERE state = 'sent' AND sent_ms < ?").run(now - o.deliveredDays * 86_400_000).changes,
  }))();
}
