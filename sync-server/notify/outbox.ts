import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import type { Db } from '../registry.js';
import { jsonArrayValues, probeEach, tableExists } from '../db/sql.js';
import type { NotifyEvent } from './guardians.js';

/**
 * The outbox: every message a guardian is owed, written where its cause is stored.
 *
 * A journal entry's messages are written by `onJournalsStored`, which ingest calls for the new entries inside the
 * transaction that stores it: the entry, its outbox rows and the device's acknowledgement commit together. A crash
 * before the commit loses neither (the device still holds the entry and resends it); after it, the rows are on disk
 * and are sent after the restart. The same entry arriving twice is not stored twice (ON CONFLICT DO NOTHING in ingest),
 * and the key is derived from (guardian, child, event, device, seq), so a message is never queued twice either.
 */

/** What a message says, kept as facts; the text is written when it is sent (notify/text.ts). */
export const Facts = z.object({
  child: z.string(),
  school: z.string().nullable(),
  ms: z.number(),
  direction: z.enum(['entry', 'exit']).optional(),
  meal: z.string().optional(),
  /** absent: the local day and the time by which the child had not arrived. */
  day: z.string().optional(),
  by: z.string().optional(),
});
export type Facts = z.infer<typeof Facts>;

export function idempotencyKey(parts: readonly (string | number)[]): string {
  return createHash('sha256').update(parts.join('\u001f')).digest('hex').slice(0, 32);
}

interface Stmts {
  /** The consenting guardians of the cards of a JSON array of tokens, with each card's token. */
  guardians: { all(tokens: string): unknown[] };
  identity: { get(device: string): unknown } | null; // null while the registry has no device identities (no provisioning yet)
  insert: { run(...a: unknown[]): { changes: number | bigint } };
}
const stmts = new WeakMap<Db, Stmts>();
const dispatchers = new WeakMap<Db, { wake: () => void; clock: () => number }>();

function prepared(db: Db): Stmts {
  let s = stmts.get(db);
  if (!s) {
    s = {
      guardians: db.prepare(
        `SELECT c.token AS token, g.person_id AS person, g.guardian_id AS guardian, g.child_name AS child, g.events
         FROM (SELECT c.token, c.person_id ${probeEach(db, jsonArrayValues(db), 'b', 'cards', 'c', 'c.token = b.value')}) c
         JOIN guardians g ON g.person_id = c.person_id WHERE g.consent = 1`,
      ),
      identity: null,
      insert: insertStmt(db),
    };
    stmts.set(db, s);
  }
  return s;
}

/** The device's school and gate direction, when the registry knows its identity (provisioning). */
function identityOf(db: Db, s: Stmts, device: string): { school: string | null; direction: string | null } | undefined {
  if (s.identity === null) {
    if (!tableExists(db, 'device_identities')) return undefined;
    s.identity = db.prepare('SELECT school, direction FROM device_identities WHERE id = ?');
  }
  return s.identity.get(device) as { school: string | null; direction: string | null } | undefined;
}

function insertStmt(db: Db) {
  return db.prepare(
    // due at once (next_ms 0): the dispatcher's clock may be another than the caller's (tests inject one)
    `INSERT INTO notify_outbox(key, guardian_id, person_id, event, facts, state, attempts, next_ms, created_ms) VALUES (?,?,?,?,?, 'pending', 0, 0, ?)
     ON CONFLICT DO NOTHING`,
  );
}

/** The dispatcher of this registry: woken after a commit that queued messages; its clock stamps the rows it will read. */
export function onOutboxWritten(db: Db, d: { wake: () => void; clock: () => number } | null): void {
  if (d) dispatchers.set(db, d);
  else dispatchers.delete(db);
}

function wakeSoon(db: Db): void {
  const d = dispatchers.get(db);
  // after the current transaction: better-sqlite3 commits synchronously, before any immediate runs
  if (d) setImmediate(d.wake);
}

const EntryData = z.object({
  direction: z.enum(['entry', 'exit']).optional().catch(undefined),
  meal: z.string().min(1).max(64).optional().catch(undefined),
});

/** A journal entry just stored: its device, the entry, its effective time (ms). */
export interface StoredEntry {
  device: string;
  e: WireJournalEntry;
  effMs: number;
}

/** Gate passages (turnstile, allowed) are entry/exit; canteen meals (allowed) are meal; nothing else tells a guardian. */
const tells = (e: WireJournalEntry): boolean => (e.kind === 'turnstile' || e.kind === 'canteen') && e.result === 'allow' && !!e.token;

/**
 * Journal entries were just stored (ingest.ts, in its transaction): queue a message for each consenting guardian of
 * each card's child who chose the event. The guardians of all the entries' cards are read in one query (one round
 * trip on PostgreSQL for a whole upload, not one per entry); entries that tell nobody (buses, refusals, entries
 * without a card) cost one string compare.
 */
export function onJournalsStored(db: Db, stored: readonly StoredEntry[], nowMs = Date.now()): void {
  const telling = stored.filter((x) => tells(x.e));
  if (telling.length === 0) return;
  const s = prepared(db);
  const tokens = [...new Set(telling.map((x) => x.e.token!))];
  const byToken = new Map<string, { person: string; guardian: string; child: string; events: string }[]>();
  for (const g of s.guardians.all(JSON.stringify(tokens)) as { token: string; person: string; guardian: string; child: string; events: string }[]) {
    const list = byToken.get(g.token) ?? [];
    list.push(g);
    byToken.set(g.token, list);
  }
  if (byToken.size === 0) return;
  const idents = new Map<string, { school: string | null; direction: string | null } | undefined>();
  const created = dispatchers.get(db)?.clock() ?? nowMs;
  let queued = 0;
  for (const { device, e, effMs } of telling) {
    const guardians = byToken.get(e.token!);
    if (!guardians) continue;
    const data = EntryData.safeParse(e.data ?? {});
    const d = data.success ? data.data : {};
    if (!idents.has(device)) idents.set(device, identityOf(db, s, device));
    const ident = idents.get(device);
    let event: NotifyEvent;
    let direction: 'entry' | 'exit' | undefined;
    if (e.kind === 'canteen') event = 'meal';
    else {
      direction = d.direction ?? (ident?.direction === 'exit' ? 'exit' : ident?.direction === 'entry' ? 'entry' : undefined);
      if (!direction) continue; // a two-way gate that did not say which way: nothing to tell
      event = direction;
    }
    const school = ident?.school ?? schoolOfLists(e.lists);
    for (const g of guardians) {
      if (!g.events.split(',').includes(event)) continue;
      const facts: Facts = { child: g.child, school, ms: effMs, ...(direction ? { direction } : {}), ...(d.meal ? { meal: d.meal } : {}) };
      const key = idempotencyKey([g.guardian, g.person, event, device, e.seq]);
      queued += Number(s.insert.run(key, g.guardian, g.person, event, JSON.stringify(facts), created).changes);
    }
  }
  if (queued > 0) wakeSoon(db);
}

function schoolOfLists(lists: Record<string, number>): string | null {
  for (const k of Object.keys(lists)) if (k.startsWith('school:')) return k.slice('school:'.length);
  return null;
}

/** Queue one "not arrived" message per consenting guardian who chose it (the scheduler's transaction). */
export function queueAbsent(
  db: Db,
  g: { person: string; guardian: string; child: string },
  school: string | null,
  day: string,
  by: string,
  nowMs: number,
): number {
  const facts: Facts = { child: g.child, school, ms: nowMs, day, by };
  const key = idempotencyKey([g.guardian, g.person, 'absent', day]);
  const r = prepared(db).insert.run(key, g.guardian, g.person, 'absent', JSON.stringify(facts), nowMs);
  if (r.changes) wakeSoon(db);
  return Number(r.changes);
}
