import { close, fsync, open } from 'node:fs';
import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { DeviceStatus, JournalBatch, WireJournalEntry } from '../protocol/wire/messages.js';
import type { Db } from './registry.js';
import { onJournalStored } from './notify/outbox.js';
import { relaxed } from './publisher.js';
import { serviceDay, settlementOptions, type SettlementOptions } from './settlement/days.js';
import { dialectOf } from './db/sql.js';

/**
 * What the server keeps of an entry's `data`: each field is checked on its own,
 * a malformed one is dropped (null) and the entry is still stored.
 */
const str = z.string().min(1).max(64).optional().catch(undefined);
const EntryData = z.object({
  effectiveTime: z.iso.datetime({ offset: true }).optional().catch(undefined),
  route: str,
  vehicle: str,
  direction: z.enum(['entry', 'exit']).optional().catch(undefined),
  reader: str,
  meal: str,
  flags: z.array(z.string().max(64)).max(32).optional().catch(undefined),
});

/**
 * Journal ingest: each (device, seq) stored once (ON CONFLICT DO NOTHING) with the
 * whole entry (route, vehicle, direction, reader, meal, flags, effective time,
 * list versions and the device's decision); the acknowledgement is the highest
 * contiguous seq stored from 1. In the same transaction each new entry with a
 * token marks its (token, service day) for settlement; an entry timed far from
 * its arrival is stored flagged (settlement.time-out-of-range) and not settled.
 *
 * A device's word is not taken on trust (issue 13 item 7):
 *  - rate: a token bucket per device admits at most `burst` new entries at once, refilled at `perSecond`.
 *    Entries over it are neither stored nor acknowledged (the lowest seqs are admitted first, so the ack
 *    moves); the device resends them, nothing is lost. A batch with nothing admitted is server.rate-limited.
 *  - impossible trips: a bus entry whose card was tapped on another vehicle or route within
 *    `impossibleWithinMs` (either side) is stored flagged settlement.impossible-trip and not settled, so it is
 *    never charged (rc-sync-server journal --flagged lists it).
 */
export interface IngestLimits {
  /** New journal entries a device may send at once. */
  burst: number;
  /** Refill of the bucket, entries per second. */
  perSecond: number;
  /** The same card on two vehicles/routes within this many ms is impossible. */
  impossibleWithinMs: number;
}
const DEFAULT_INGEST_LIMITS: IngestLimits = { burst: 10_000, perSecond: 100, impossibleWithinMs: 60_000 };

/**
 * Group commit of the registry's WAL (issue 13 figure: ingest ≥ 20,000 entries/s with durable acks).
 * Ingest commits without an fsync of its own (synchronous = NORMAL for its transaction: the commit is in the WAL,
 * not yet on disk); `durable()` resolves once an fsync of the WAL that started after the call has finished. One
 * fsync runs at a time, on libuv's thread pool, so the event loop keeps storing uploads meanwhile: every upload
 * committed while an fsync runs is covered by the next one. A journal-ack is sent only after its `durable()`.
 * The WAL is opened by path for each fsync (SQLite may truncate it, never replaces it while the registry is open);
 * a WAL checkpointed meanwhile is no loss: with synchronous = NORMAL SQLite syncs the WAL before a checkpoint and
 * the database file after it. An fsync that fails rejects every waiter: their acks are not sent, the devices resend.
 */
export class GroupCommit {
  private waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** An fsync is running. */
  running = false;
  /** fsyncs run so far (the bench reports commits per fsync). */
  syncs = 0;
  constructor(private readonly walPath: string) {}

  durable(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.running) this.flush();
    });
  }

  private flush(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.running = true;
    const done = (err: Error | null) => {
      this.running = false;
      this.syncs++;
      for (const w of batch) {
        if (err) w.reject(err);
        else w.resolve();
      }
      if (this.waiting.length > 0) this.flush();
    };
    open(this.walPath, 'r', (e, fd) => {
      if (e) return done(e);
      fsync(fd, (e2) => close(fd, () => done(e2)));
    });
  }
}
/** What storing a batch did: the new acknowledgement, how many entries were new, how many of them wait for settlement, how many were over the rate (not stored). */
export interface StoreResult {
  upTo: number;
  stored: number;
  settle: number;
  limited: number;
}

/** How long after an upload arrived ingest still counts as busy (Ingest.busy). */
const BUSY_AFTER_MS = 100;

export class Ingest {
  private readonly insert;
  private readonly dirty;
  private readonly acked;
  private readonly next;
  private readonly setAcked;
  private readonly touch;
  private readonly elsewhere;
  private readonly laterClean;
  private readonly flag;
  private readonly opts: SettlementOptions;
  private readonly limits: IngestLimits;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** With group commit: `store` commits unsynced and `durable()` waits for the shared fsync (see GroupCommit). */
  private readonly group: GroupCommit | null;
  /**
   * `durability`: 'commit' (default) — each `store` is on disk when it returns (the registry's synchronous = FULL);
   * 'group' — `store` commits without an fsync and `durable()` resolves once it is on disk (the server: acks after it).
   */
  constructor(
    private readonly db: Db,
    settlement: Partial<SettlementOptions> = {},
    limits: Partial<IngestLimits> = {},
    durability: 'commit' | 'group' = 'commit',
  ) {
    // on PostgreSQL a COMMIT (synchronous_commit = on, the session's setting: db/pg.ts) is durable when it returns, so
    // the drain's one transaction is the group commit there and its acks leave after it; the WAL fsync is SQLite's
    this.group = durability === 'group' && dialectOf(db) === 'sqlite' && !db.memory ? new GroupCommit(`${db.name}-wal`) : null;
    this.opts = settlementOptions(settlement);
    this.limits = { ...DEFAULT_INGEST_LIMITS, ...limits };
    // an entry is impossible when an EARLIER entry (by effective time, then device, then seq) of the same card was on
    // another vehicle or route within the window: so the same journal gives the same flags whatever the arrival order
    const conflict = `token = ? AND eff_ms BETWEEN ? AND ? AND kind = 'bus' AND (coalesce(vehicle, device) != ? OR coalesce(route, '') != ?)`;
    this.elsewhere = db.prepare(
      `SELECT 1 FROM journal WHERE ${conflict} AND (eff_ms < ? OR (eff_ms = ? AND (device < ? OR (device = ? AND seq < ?)))) LIMIT 1`,
    );
    // "clean": not flagged at ingest. Settlement's own codes (an unknown route, not a fare) are recomputed on every
    // replay and do not count, or the flag would depend on whether settlement ran before the earlier entry arrived.
    this.laterClean = db.prepare(
      `SELECT device, seq, service_day AS day FROM journal WHERE ${conflict} AND (settle_code IS NULL OR settle_code NOT IN (?, ?))
         AND (eff_ms > ? OR (eff_ms = ? AND (device > ? OR (device = ? AND seq > ?))))`,
    );
    this.flag = db.prepare('UPDATE journal SET settle_code = ?, settled_fare = NULL, settled_reason = NULL WHERE device = ? AND seq = ?');
    this.insert = db.prepare(
      `INSERT INTO journal(device, seq, time, token, kind, result, reason, fare, benefit, lists, received_at,
         route, vehicle, direction, reader, meal, flags, eff_ms, service_day, settle_code) VALUES (?,?,?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?)
       ON CONFLICT DO NOTHING`,
    );
    this.dirty = db.prepare('INSERT INTO settle_dirty(token, day) VALUES (?, ?) ON CONFLICT DO NOTHING');
    this.acked = db.prepare('SELECT acked FROM devices WHERE id = ?').pluck();
    this.next = db.prepare('SELECT seq FROM journal WHERE device = ? AND seq > ? ORDER BY seq LIMIT 5000').pluck();
    this.setAcked = db.prepare('UPDATE devices SET acked = ? WHERE id = ?');
    this.touch = db.prepare('INSERT INTO devices(id, last_seen) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen');
  }

  /** Resolves when everything `store` returned before this call is on disk (at once without group commit). */
  durable(): Promise<void> {
    return this.group ? this.group.durable() : Promise.resolve();
  }

  /** How many WAL fsyncs group commit ran (0 without it). */
  get syncs(): number {
    return this.group?.syncs ?? 0;
  }

  private lastSubmit = -Infinity;
  /**
   * Uploads are in flight: one is queued or waits for its fsync, or one came within the last BUSY_AFTER_MS (its ack
   * and the device's next upload are on their way through the broker). Long work sharing the event loop (imports)
   * takes short steps meanwhile. A window of a second made a million-row import crawl while one device tapped every 200 ms.
   */
  busy(): boolean {
    return this.queue.length > 0 || (this.group?.running ?? false) || performance.now() - this.lastSubmit < BUSY_AFTER_MS;
  }

  private queue: { device: string; batch: JournalBatch; resolve: (r: StoreResult) => void; reject: (e: unknown) => void }[] = [];
  /**
   * The server's path: the batch is stored with every other batch that arrived in the same turn of the event loop,
   * in one transaction (each batch in its own savepoint: a refused batch refuses only itself), and the promise
   * resolves once that transaction is on disk (group commit): one commit and one fsync for a burst of uploads
   * instead of one each. Rejects as `store` throws (device mismatch, over the rate), or when the fsync fails.
   */
  submit(device: string, batch: JournalBatch): Promise<StoreResult> {
    this.lastSubmit = performance.now();
    return new Promise((resolve, reject) => {
      if (this.queue.push({ device, batch, resolve, reject }) === 1) setImmediate(() => this.drain());
    });
  }

  private drain(): void {
    const items = this.queue;
    this.queue = [];
    const now = new Date();
    const out: ({ ok: true; r: StoreResult } | { ok: false; e: unknown })[] = [];
    const all = () =>
      this.db.transaction(() => {
        for (const it of items) {
          try {
            out.push({ ok: true, r: this.store(it.device, null, it.batch, now) });
          } catch (e) {
            out.push({ ok: false, e });
          }
        }
      })();
    try {
      if (this.group) relaxed(this.db, all);
      else all();
    } catch (e) {
      for (const it of items) it.reject(e);
      return;
    }
    const settle = (ok: boolean, e?: unknown) =>
      items.forEach((it, i) => {
        const o = out[i]!;
        if (!ok) it.reject(e);
        else if (o.ok) it.resolve(o.r);
        else it.reject(o.e);
      });
    this.durable().then(
      () => settle(true),
      (e: unknown) => settle(false, e),
    );
  }

  /**
   * Store a batch that came on rc/v1/device/<topicDevice>/journal.
   * `sender` is the MQTT client id when the broker tells us (embedded), else null.
   * Returns the new acknowledgement, how many entries were new, how many of them wait for settlement and how many were over the rate (not stored).
   */
  store(topicDevice: string, sender: string | null, batch: JournalBatch, now = new Date()): StoreResult {
    if (batch.device !== topicDevice || (sender !== null && sender !== topicDevice)) {
      throw new RcError(ErrorCode.SyncDeviceMismatch, 'journal batch device id does not match its sender', {
        topic: topicDevice,
        payload: batch.device,
        sender,
      });
    }
    const at = now.toISOString();
    let stored = 0;
    let settle = 0;
    let limited = 0;
    const txn = this.db.transaction(() => {
      this.touch.run(batch.device, at);
      const before = (this.acked.get(batch.device) as number | undefined) ?? 0;
      const fresh = batch.entries.filter((e) => e.seq > before).sort((a, b) => a.seq - b.seq);
      const admit = this.take(batch.device, fresh.length, now.getTime());
      limited = fresh.length - admit;
      if (fresh.length > 0 && admit === 0)
        throw new RcError(ErrorCode.ServerRateLimited, 'journal entries over the device rate: not stored, not acknowledged', {
          device: batch.device,
          entries: fresh.length,
        });
      for (const e of fresh.slice(0, admit)) {
        const row = this.row(e, now.getTime());
        if (row.code === null && this.impossible(batch.device, e, row)) row.extra[row.extra.length - 1] = row.code = ErrorCode.SettlementImpossibleTrip;
        const lists = JSON.stringify(e.lists);
        const r = this.insert.run(batch.device, e.seq, e.time, e.token, e.kind, e.result, e.reason, e.fareKopecks, e.benefit, lists, at, ...row.extra);
        if (r.changes === 1) {
          stored++;
          onJournalStored(this.db, batch.device, e, row.eff, now.getTime()); // guardians' messages, in this transaction (notify/outbox.ts)
          this.flagLater(batch.device, e, row); // any stored entry counts as the earlier one (the flag depends on the journal, not on arrival)
          if (e.token && row.code === null) {
            this.dirty.run(e.token, row.day);
            settle++;
          }
        }
      }
      let acked = (this.acked.get(batch.device) as number | undefined) ?? 0;
      for (;;) {
        const seqs = this.next.all(batch.device, acked) as number[];
        let moved = false;
        for (const s of seqs) {
          if (s !== acked + 1) break;
          acked = s;
          moved = true;
        }
        if (!moved || seqs.length < 5000) break;
      }
      this.setAcked.run(acked, batch.device);
      return acked;
    });
    const upTo = this.group ? relaxed(this.db, () => txn()) : txn();
    return { upTo, stored, settle, limited };
  }

  /** Take up to `n` from the device's bucket; returns how many were granted. */
  private take(device: string, n: number, nowMs: number): number {
    const l = this.limits;
    const b = this.buckets.get(device) ?? { tokens: l.burst, at: nowMs };
    b.tokens = Math.min(l.burst, b.tokens + (Math.max(0, nowMs - b.at) / 1000) * l.perSecond);
    b.at = nowMs;
    const granted = Math.min(n, Math.floor(b.tokens));
    b.tokens -= granted;
    this.buckets.set(device, b);
    return granted;
  }

  /** The same card on another vehicle or route within the window: no passenger can do that. */
  private impossible(device: string, e: WireJournalEntry, row: { eff: number; vehicle: string | null; route: string | null }): boolean {
    if (!e.token || e.kind !== 'bus') return false;
    const w = this.limits.impossibleWithinMs;
    const key = [e.token, row.eff - w, row.eff + w, row.vehicle ?? device, row.route ?? '', row.eff, row.eff, device, device, e.seq];
    return this.elsewhere.get(...key) !== undefined;
  }

  /** A newly stored entry makes the later entries it conflicts with impossible: flag them and re-settle their days. */
  private flagLater(device: string, e: WireJournalEntry, row: { eff: number; vehicle: string | null; route: string | null }): void {
    if (!e.token || e.kind !== 'bus') return;
    const w = this.limits.impossibleWithinMs;
    const conflict = [e.token, row.eff - w, row.eff + w, row.vehicle ?? device, row.route ?? ''];
    const ingestFlags = [ErrorCode.SettlementTimeOutOfRange, ErrorCode.SettlementImpossibleTrip];
    const key = [...conflict, ...ingestFlags, row.eff, row.eff, device, device, e.seq];
    for (const l of this.laterClean.all(...key) as { device: string; seq: number; day: string }[]) {
      this.flag.run(ErrorCode.SettlementImpossibleTrip, l.device, l.seq);
      this.dirty.run(e.token, l.day);
    }
  }

  private row(
    e: WireJournalEntry,
    nowMs: number,
  ): { extra: unknown[]; day: string; code: string | null; eff: number; vehicle: string | null; route: string | null } {
    const d = EntryData.safeParse(e.data ?? {});
    const data = d.success ? d.data : {};
    const eff = data.effectiveTime !== undefined ? Date.parse(data.effectiveTime) : Date.parse(e.time);
    const day = serviceDay(eff, this.opts);
    const code = eff > nowMs + this.opts.maxFutureMs || eff < nowMs - this.opts.maxPastMs ? ErrorCode.SettlementTimeOutOfRange : null;
    const extra = [
      data.route ?? null,
      data.vehicle ?? null,
      data.direction ?? null,
      data.reader ?? null,
      data.meal ?? null,
      JSON.stringify(data.flags ?? []),
      eff,
      day,
      code,
    ];
    return { extra, day, code, eff, vehicle: data.vehicle ?? null, route: data.route ?? null };
  }

  status(s: DeviceStatus, now = new Date()): void {
    this.db
      .prepare(
        'INSERT INTO devices(id, online, last_seen, lists, backlog, reader) VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET online=excluded.online, last_seen=excluded.last_seen, lists=excluded.lists, backlog=excluded.backlog, reader=coalesce(excluded.reader, devices.reader)',
      )
      .run(
        s.device,
        s.online ? 1 : 0,
        s.online ? now.toISOString() : (this.lastSeen(s.device) ?? now.toISOString()),
        JSON.stringify(s.lists),
        s.backlog,
        s.reader ?? null,
      );
  }

  private lastSeen(id: string): string | undefined {
    return this.db.prepare('SELECT last_seen FROM devices WHERE id = ?').pluck().get(id) as string | undefined;
  }
}
