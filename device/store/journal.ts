import type Database from 'better-sqlite3';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Decision, Direction, Tap } from '../../protocol/rules/types.js';
import type { Meta } from './schema.js';

/**
 * The tap journal: one row per decision or event, seq without gaps (also
 * across prunes and restarts). A row is built by journalRow, stored as it is,
 * and turned into a JournalEntry by journalEntry, the one place that builds
 * one (after a commit and when reading a range). Methods here never open a
 * transaction: the Store (store.ts) decides what commits together.
 */

/** One decision in the journal, as the sync client uploads it. Never holds a PAN. */
export interface JournalEntry {
  seq: number;
  time: string; // ISO-8601 UTC, the wall time of the tap
  effectiveTime: string; // ISO-8601 UTC, the guarded time the rules used
  device: string;
  token: string; // 32 hex
  kind: string; // bus | turnstile | canteen
  direction: Direction | null;
  reader: string | null;
  result: 'allow' | 'deny' | 'event';
  reason: string;
  fareKopecks: number;
  benefit: string | null;
  listVersions: Record<string, number>;
  route?: string;
  vehicle?: string;
  meal?: string;
  /** The version of the card-token key `token` was derived with (taps of a read card; absent on events and unreadable cards). */
  keyVersion?: number;
  flags: string[];
}

/** An event for the journal that is not a decision (e.g. turnstile "not-passed"). */
export interface JournalEvent {
  wallTime: number;
  token: string;
  kind: string;
  reason: string;
  direction?: Direction | null;
  reader?: string | null;
  flags?: string[];
}

/** A journal row as stored (table journal, schema.ts). */
export interface JournalRow {
  seq: number;
  time_ms: number;
  eff_ms: number;
  device: string;
  token: Buffer;
  kind: string;
  direction: string | null;
  reader: string | null;
  result: string;
  reason: string;
  fare: number;
  benefit: string | null;
  lists: string;
  extra: string;
}

/** What goes into a row besides seq and device: a decision's or an event's facts. */
interface RowFacts {
  wallTime: number;
  effectiveTime: number;
  token: Buffer;
  kind: string;
  direction: Direction | null;
  reader: string | null;
  result: JournalEntry['result'];
  reason: string;
  fareKopecks: number;
  benefit: string | null;
  listVersions: Record<string, number>;
  flags: readonly string[];
  route?: string | undefined;
  vehicle?: string | undefined;
  meal?: string | undefined;
  keyVersion?: number | undefined;
}

function journalRow(seq: number, device: string, f: RowFacts): JournalRow {
  const extra: Record<string, unknown> = { flags: f.flags };
  if (f.route !== undefined) extra.route = f.route;
  if (f.vehicle !== undefined) extra.vehicle = f.vehicle;
  if (f.meal !== undefined) extra.meal = f.meal;
  if (f.keyVersion !== undefined) extra.keyVersion = f.keyVersion;
  return {
    seq,
    time_ms: Math.trunc(f.wallTime),
    eff_ms: Math.trunc(f.effectiveTime),
    device,
    token: f.token,
    kind: f.kind,
    direction: f.direction,
    reader: f.reader,
    result: f.result,
    reason: f.reason,
    fare: f.fareKopecks,
    benefit: f.benefit,
    lists: JSON.stringify(f.listVersions),
    extra: JSON.stringify(extra),
  };
}

/** The one place a JournalEntry is built: from its row. */
export function journalEntry(r: JournalRow): JournalEntry {
  const extra = JSON.parse(r.extra) as { flags?: string[]; route?: string; vehicle?: string; meal?: string; keyVersion?: number };
  return {
    seq: r.seq,
    time: new Date(r.time_ms).toISOString(),
    effectiveTime: new Date(r.eff_ms).toISOString(),
    device: r.device,
    token: r.token.toString('hex'),
    kind: r.kind,
    direction: r.direction as Direction | null,
    reader: r.reader,
    result: r.result as JournalEntry['result'],
    reason: r.reason,
    fareKopecks: r.fare,
    benefit: r.benefit,
    listVersions: JSON.parse(r.lists) as Record<string, number>,
    ...(extra.route !== undefined ? { route: extra.route } : {}),
    ...(extra.vehicle !== undefined ? { vehicle: extra.vehicle } : {}),
    ...(extra.meal !== undefined ? { meal: extra.meal } : {}),
    ...(extra.keyVersion !== undefined ? { keyVersion: extra.keyVersion } : {}),
    flags: extra.flags ?? [],
  };
}

export class Journal {
  private seq: number;
  private readonly st: ReturnType<typeof prepare>;

  constructor(
    db: Database.Database,
    private readonly meta: Meta,
    private readonly deviceId: string,
  ) {
    this.st = prepare(db);
    // the last seq is the journal's highest, or (everything pruned) the one saved by prune
    this.seq = Math.max(meta.get('journal_seq'), (this.st.maxSeq.get() as number | null) ?? 0);
  }

  /** The next row of a decision (not yet written); `keyVersion`: the version of the key the token was derived with. */
  tapRow(token: Buffer, tap: Tap, decision: Decision, listVersions: Record<string, number>, keyVersion?: number): JournalRow {
    return journalRow(this.seq + 1, this.deviceId, {
      wallTime: tap.wallTime,
      effectiveTime: decision.effectiveTime,
      token,
      kind: decision.kind,
      direction: decision.direction ?? tap.direction ?? null,
      reader: tap.reader ?? null,
      result: decision.result,
      reason: decision.reason,
      fareKopecks: decision.fareKopecks,
      benefit: decision.benefit,
      listVersions,
      flags: decision.flags,
      route: decision.route,
      vehicle: decision.vehicle,
      meal: decision.meal,
      keyVersion,
    });
  }

  /** The next row of an event (result 'event', no fare; not yet written). */
  eventRow(token: Buffer, ev: JournalEvent, listVersions: Record<string, number>): JournalRow {
    return journalRow(this.seq + 1, this.deviceId, {
      wallTime: ev.wallTime,
      effectiveTime: ev.wallTime,
      token,
      kind: ev.kind,
      direction: ev.direction ?? null,
      reader: ev.reader ?? null,
      result: 'event',
      reason: ev.reason,
      fareKopecks: 0,
      benefit: null,
      listVersions,
      flags: ev.flags ?? [],
    });
  }

  /** Inside a transaction: write a row from tapRow/eventRow. */
  insert(r: JournalRow): void {
    this.st.insert.run(r.seq, r.time_ms, r.eff_ms, r.device, r.token, r.kind, r.direction, r.reader, r.result, r.reason, r.fare, r.benefit, r.lists, r.extra);
  }

  /** After the transaction that inserted row `seq` committed. */
  committed(seq: number): void {
    this.seq = seq;
  }

  lastSeq(): number {
    return this.seq;
  }

  ackedSeq(): number {
    return this.meta.get('acked_seq');
  }

  range(fromSeq: number, limit: number): JournalEntry[] {
    return (this.st.from.all(fromSeq, limit) as JournalRow[]).map(journalEntry);
  }

  /** Acks never move backwards (an older one is ignored); beyond the last seq is store.journal-ack-invalid. */
  ack(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > this.seq) {
      throw new RcError(ErrorCode.JournalAckInvalid, `ack of seq ${String(seq)} but the journal ends at ${this.seq}`, { seq: String(seq), lastSeq: this.seq });
    }
    if (seq > this.ackedSeq()) this.meta.set('acked_seq', seq);
  }

  /** Move the ack back to `seq` (the server lost entries it had acknowledged); beyond the last seq is store.journal-ack-invalid. */
  rewind(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > this.seq) {
      const context = { seq: String(seq), lastSeq: this.seq };
      throw new RcError(ErrorCode.JournalAckInvalid, `rewind to seq ${String(seq)} but the journal ends at ${this.seq}`, context);
    }
    if (seq < this.ackedSeq()) this.meta.set('acked_seq', seq);
  }

  /** Inside a transaction: delete acknowledged rows with tap time before `ms`; returns how many. */
  prune(ms: number): number {
    // remember the last seq in case this empties the journal (seq numbers are never reused)
    this.meta.set('journal_seq', this.seq);
    return this.st.prune.run(this.ackedSeq(), ms).changes;
  }
}

function prepare(db: Database.Database) {
  return {
    maxSeq: db.prepare('SELECT max(seq) FROM journal').pluck(),
    insert: db.prepare(
      'INSERT INTO journal (seq, time_ms, eff_ms, device, token, kind, direction, reader, result, reason, fare, benefit, lists, extra) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    from: db.prepare('SELECT * FROM journal WHERE seq >= ? ORDER BY seq LIMIT ?'),
    prune: db.prepare('DELETE FROM journal WHERE seq <= ? AND time_ms < ?'),
  };
}
