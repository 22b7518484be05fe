import Database from 'better-sqlite3';
import type { Db } from '../registry.js';
import { migrateSchema } from '../db/migrations.js';

/**
 * The cabinet's limits, kept in the registry (tables cabinet_attempts and cabinet_locks, schema.ts) so that a restart or
 * a second server instance on the same registry does not forget them: an attacker guessing card numbers gains nothing by
 * waiting for a restart. Rows older than their window (attempts) or past their end (locks) are deleted as new ones are
 * written. The clock is injected (tests).
 *
 * The connect lock (issue 15, security): five wrong card numbers within an hour lock connecting for an hour from the
 * fifth, per person and per client address (either locks). A wrong number is one that fails its own checks: length or
 * Luhn (card.bad-pan) or a malformed expiry (card.bad-expiry). A valid number is never "wrong" here: whether a bank knows
 * the card is not something the server can tell.
 */
export interface ConnectLockOptions {
  failures: number;
  windowMs: number;
  lockMs: number;
}
export const DEFAULT_CONNECT_LOCK: ConnectLockOptions = { failures: 5, windowMs: 3600_000, lockMs: 3600_000 };

/** A private in-memory registry for a limit built without one (unit tests of the rules alone). */
function memoryDb(): Db {
  const db = new Database(':memory:') as Db;
  migrateSchema(db);
  return db;
}

export class ConnectLock {
  private readonly db: Db;
  constructor(
    private readonly clock: () => number,
    private readonly o: ConnectLockOptions = DEFAULT_CONNECT_LOCK,
    db?: Db,
  ) {
    this.db = db ?? memoryDb();
  }

  /** Until when connecting is locked for this person or address (ms), or null. */
  lockedUntil(person: string, address: string): number | null {
    const until = this.db
      .prepare("SELECT max(until_ms) FROM cabinet_locks WHERE kind = 'connect' AND key IN (?, ?) AND until_ms > ?")
      .pluck()
      .get(`p:${person}`, `a:${address}`, this.clock()) as number | null;
    return until ?? null;
  }

  failed(person: string, address: string): void {
    const now = this.clock();
    const db = this.db;
    db.transaction(() => {
      db.prepare("DELETE FROM cabinet_attempts WHERE kind = 'connect' AND at_ms <= ?").run(now - this.o.windowMs);
      db.prepare("DELETE FROM cabinet_locks WHERE kind = 'connect' AND until_ms <= ?").run(now);
      for (const k of [`p:${person}`, `a:${address}`]) {
        const recent = db
          .prepare("SELECT count(*) FROM cabinet_attempts WHERE kind = 'connect' AND key = ? AND at_ms > ?")
          .pluck()
          .get(k, now - this.o.windowMs) as number;
        if (recent + 1 >= this.o.failures) {
          db.prepare(
            "INSERT INTO cabinet_locks(kind, key, until_ms) VALUES ('connect', ?, ?) ON CONFLICT(kind, key) DO UPDATE SET until_ms = CASE WHEN cabinet_locks.until_ms > excluded.until_ms THEN cabinet_locks.until_ms ELSE excluded.until_ms END",
          ).run(k, now + this.o.lockMs);
          db.prepare("DELETE FROM cabinet_attempts WHERE kind = 'connect' AND key = ?").run(k);
        } else db.prepare("INSERT INTO cabinet_attempts(kind, key, at_ms) VALUES ('connect', ?, ?)").run(k, now);
      }
    })();
  }
}

/** Attempts per client address over a sliding window (the cabinet's sign-in starts and failed callbacks). */
export interface AddressLimitOptions {
  /** cabinet_attempts.kind: which limit the rows belong to. */
  kind: string;
  windowMs: number;
  perAddress: number;
}

export class AddressLimit {
  constructor(
    private readonly db: Db,
    private readonly o: AddressLimitOptions,
  ) {}

  /** True when `perAddress` attempts from this address fall inside the window ending now. */
  blocked(address: string, now: number): boolean {
    const n = this.db
      .prepare('SELECT count(*) FROM cabinet_attempts WHERE kind = ? AND key = ? AND at_ms > ?')
      .pluck()
      .get(this.o.kind, `a:${address}`, now - this.o.windowMs) as number;
    return n >= this.o.perAddress;
  }

  record(address: string, now: number): void {
    const db = this.db;
    db.transaction(() => {
      db.prepare('DELETE FROM cabinet_attempts WHERE kind = ? AND at_ms <= ?').run(this.o.kind, now - this.o.windowMs);
      db.prepare('INSERT INTO cabinet_attempts(kind, key, at_ms) VALUES (?, ?, ?)').run(this.o.kind, `a:${address}`, now);
    })();
  }
}
