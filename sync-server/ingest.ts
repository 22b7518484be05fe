import { close, fsync, open } from 'node:fs';
import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { DeviceStatus, JournalBatch, WireJournalEntry } from '../protocol/wire/messages.js';
import type { Db } from './registry.js';
import { onJournalsStored, type StoredEntry } from './notify/outbox.js';
import { relaxed } from './publisher.js';
import { serviceDay, settlementOptions, type SettlementOptions } from './settlement/days.js';
import { dialectOf, jsonArrayValues, jsonRows, probeEach } from './db/sql.js';

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

/** One upload to store: the device its topic names, the MQTT client id when the broker tells it, the batch. */
interface Upload {
  device: string;
  sender: string | null;
  batch: JournalBatch;
}
type Outcome = { ok: true; r: StoreResult } | { ok: false; e: unknown };

/** Rows per multi-row statement: one JSON parameter each (a few MB at most), so a group of uploads is a few round trips. */
const ROWS_PER_STATEMENT = 5000;

/** An entry as the journal orders entries for impossible trips: by effective time, then device, then seq. */
const earlier = (a: { eff: number; device: string; seq: number }, b: { eff: number; device: string; seq: number }): boolean =>
  a.eff < b.eff || (a.eff === b.eff && (a.device < b.device || (a.device === b.device && a.seq < b.seq)));
const keyOf = (device: string, seq: number): string => `${device}\u0000${seq}`;

export class Ingest {
  private readonly insert;
  private readonly dirty;
  private readonly ackedOf;
  private readonly nextOf;
  private readonly next;
  private readonly setAcked;
  private readonly touch;
  private readonly conflicts;
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
    // Every statement takes a whole group of uploads (JSON parameters, db/sql.ts jsonRows): on PostgreSQL each statement
    // is a round trip (docs/postgres.md), so a group costs a few round trips, not several per entry.
    this.ackedOf = db.prepare(`SELECT id, acked FROM devices WHERE id IN (${jsonArrayValues(db)})`);
    this.insert = db.prepare(
      `INSERT INTO journal(device, seq, time, token, kind, result, reason, fare, benefit, lists, received_at,
         route, vehicle, direction, reader, meal, flags, eff_ms, service_day, settle_code)
       SELECT p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17, p18, p19
       FROM (${jsonRows(db, 'text bigint text text text text text bigint text text text text text text text text text bigint text text')}) r
       WHERE true ON CONFLICT DO NOTHING RETURNING device, seq`,
    );
    // the bus entries k of a new bus entry's card (its token, effective time, vehicle or device, route, device, seq given)
    // on another vehicle or route within the window: the new one is impossible when k is EARLIER (by effective time,
    // then device, then seq), k when it is later; so the same journal gives the same flags whatever the arrival order
    // (nearly always no row at all)
    // (one index probe per new entry, db/sql.ts probeEach)
    this.conflicts = db.prepare(
      `SELECT n.p4 AS jd, n.p5 AS js, k.device AS kd, k.seq AS ks, k.eff_ms AS ke, k.settle_code AS kc, k.service_day AS kday, k.token AS token
       ${probeEach(db, jsonRows(db, 'text bigint text text text bigint'), 'n', 'journal', 'k', 'k.token = n.p0 AND k.eff_ms BETWEEN n.p1 - ? AND n.p1 + ?')}
         AND k.kind = 'bus' AND (coalesce(k.vehicle, k.device) != n.p2 OR coalesce(k.route, '') != n.p3)`,
    );
    this.flag = db.prepare('UPDATE journal SET settle_code = ?, settled_fare = NULL, settled_reason = NULL WHERE device = ? AND seq = ?');
    this.dirty = db.prepare(`INSERT INTO settle_dirty(token, day) SELECT p0, p1 FROM (${jsonRows(db, 'text text')}) d WHERE true ON CONFLICT DO NOTHING`);
    // the devices whose entry after the run known here is in the journal already (stored out of order before)
    this.nextOf = db.prepare(`SELECT b.p0 AS device ${probeEach(db, jsonRows(db, 'text bigint'), 'b', 'journal', 'j', 'j.device = b.p0 AND j.seq = b.p1')}`);
    this.next = db.prepare('SELECT seq FROM journal WHERE device = ? AND seq > ? ORDER BY seq LIMIT 5000').pluck();
    this.touch = db.prepare(
      `INSERT INTO devices(id, last_seen) SELECT p0, CAST(? AS TEXT) FROM (${jsonRows(db, 'text')}) d WHERE true
       ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen`,
    );
    // never backwards: another instance may have moved the ack further meanwhile (its rows are committed: acknowledging them is safe)
    this.setAcked = db.prepare(
      `INSERT INTO devices(id, acked) SELECT p0, p1 FROM (${jsonRows(db, 'text bigint')}) d WHERE true
       ON CONFLICT(id) DO UPDATE SET acked = CASE WHEN excluded.acked > devices.acked THEN excluded.acked ELSE devices.acked END
       RETURNING id, acked`,
    );
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
    let out: Outcome[] = [];
    const all = () =>
      this.db.transaction(() => {
        out = this.storeAll(
          items.map((it) => ({ device: it.device, sender: null, batch: it.batch })),
          now,
        );
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
    const txn = this.db.transaction(() => this.storeAll([{ device: topicDevice, sender, batch }], now)[0]!);
    const o = this.group ? relaxed(this.db, () => txn()) : txn();
    if (!o.ok) throw o.e;
    return o.r;
  }

  /**
   * Store uploads together, inside the caller's transaction: each (device, seq) once, in a few multi-row statements
   * for the whole group (not one per entry); an upload refused (device mismatch, over the rate) writes nothing. The
   * devices' rows are locked (sorted, so two instances never deadlock on them) after the journal rows are in and
   * before the acks are worked out: an instance storing the same device meanwhile has committed by then, and its
   * entries count (READ COMMITTED: each statement sees what is committed when it starts).
   */
  private storeAll(uploads: readonly Upload[], now: Date): Outcome[] {
    const at = now.toISOString();
    const nowMs = now.getTime();
    const out: Outcome[] = uploads.map((u) =>
      u.batch.device !== u.device || (u.sender !== null && u.sender !== u.device)
        ? {
            ok: false,
            e: new RcError(ErrorCode.SyncDeviceMismatch, 'journal batch device id does not match its sender', {
              topic: u.device,
              payload: u.batch.device,
              sender: u.sender,
            }),
          }
        : { ok: true, r: { upTo: 0, stored: 0, settle: 0, limited: 0 } },
    );
    const devices = [...new Set(uploads.filter((_u, i) => out[i]!.ok).map((u) => u.device))].sort();
    if (devices.length === 0) return out;
    const before = new Map<string, number>();
    for (const r of this.ackedOf.all(JSON.stringify(devices)) as { id: string; acked: number }[]) before.set(r.id, r.acked);

    // what each upload brings: entries after the device's ack, not already in this group, over the rate or not
    interface Row {
      i: number;
      device: string;
      e: WireJournalEntry;
      r: ReturnType<Ingest['row']>;
    }
    const rows: Row[] = [];
    const seen = new Set<string>();
    const present = new Map<string, Set<number>>(); // per device, the seqs in the journal once this group is stored
    const touched = new Set<string>();
    uploads.forEach((u, i) => {
      if (!out[i]!.ok) return;
      const acked = before.get(u.device) ?? 0;
      const fresh = u.batch.entries
        .filter((e) => e.seq > acked && !seen.has(keyOf(u.device, e.seq)))
        .sort((a, b) => a.seq - b.seq)
        .filter((e, k, all) => k === 0 || all[k - 1]!.seq !== e.seq);
      const admit = this.take(u.device, fresh.length, nowMs);
      if (fresh.length > 0 && admit === 0) {
        out[i] = {
          ok: false,
          e: new RcError(ErrorCode.ServerRateLimited, 'journal entries over the device rate: not stored, not acknowledged', {
            device: u.device,
            entries: fresh.length,
          }),
        };
        return;
      }
      touched.add(u.device);
      (out[i] as { r: StoreResult }).r.limited = fresh.length - admit;
      const seqs = present.get(u.device) ?? new Set<number>();
      present.set(u.device, seqs);
      for (const e of fresh.slice(0, admit)) {
        seen.add(keyOf(u.device, e.seq));
        seqs.add(e.seq); // stored now or before (the key is the journal's only unique one): in the journal either way
        rows.push({ i, device: u.device, e, r: this.row(e, nowMs) });
      }
    });
    if (touched.size === 0) return out;
    rows.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.e.seq - b.e.seq)); // one lock order on every instance

    // the journal rows, each (device, seq) once
    const stored = new Set<string>();
    for (let k = 0; k < rows.length; k += ROWS_PER_STATEMENT) {
      const chunk = rows
        .slice(k, k + ROWS_PER_STATEMENT)
        .map(({ device, e, r }) => [
          device,
          e.seq,
          e.time,
          e.token,
          e.kind,
          e.result,
          e.reason,
          e.fareKopecks,
          e.benefit,
          JSON.stringify(e.lists),
          at,
          ...r.extra,
        ]);
      for (const x of this.insert.all(JSON.stringify(chunk)) as { device: string; seq: number }[]) stored.add(keyOf(x.device, x.seq));
    }
    const fresh = rows.filter((x) => stored.has(keyOf(x.device, x.e.seq)));

    // impossible trips among the new bus entries and the journal (see the statement)
    const flagged = new Set<string>();
    const dirty = new Map<string, [string, string]>();
    const w = this.limits.impossibleWithinMs;
    const buses = fresh.filter((x) => x.e.kind === 'bus' && x.e.token);
    const byKey = new Map(buses.map((x) => [keyOf(x.device, x.e.seq), x]));
    for (let k = 0; k < buses.length; k += ROWS_PER_STATEMENT) {
      const chunk = buses.slice(k, k + ROWS_PER_STATEMENT).map((x) => [x.e.token, x.r.eff, x.r.vehicle ?? x.device, x.r.route ?? '', x.device, x.e.seq]);
      const pairs = this.conflicts.all(JSON.stringify(chunk), w, w) as {
        jd: string;
        js: number;
        kd: string;
        ks: number;
        ke: number;
        kc: string | null;
        kday: string;
        token: string;
      }[];
      for (const p of pairs) {
        const x = byKey.get(keyOf(p.jd, p.js))!;
        const j = { eff: x.r.eff, device: x.device, seq: x.e.seq };
        const k2 = { eff: p.ke, device: p.kd, seq: p.ks };
        if (earlier(k2, j)) {
          if (x.r.code === null) flagged.add(keyOf(p.jd, p.js));
        } else if (!flaggedAtIngest(p.kc) && !flagged.has(keyOf(p.kd, p.ks))) {
          flagged.add(keyOf(p.kd, p.ks));
          if (!stored.has(keyOf(p.kd, p.ks))) dirty.set(`${p.token}\u0000${p.kday}`, [p.token, p.kday]); // settled before: settle its day again
        }
      }
    }
    for (const f of flagged) {
      const [device, seq] = f.split('\u0000') as [string, string];
      this.flag.run(ErrorCode.SettlementImpossibleTrip, device, Number(seq));
    }

    // what the new entries start: settlement of their (card, day), guardians' messages
    const told: StoredEntry[] = [];
    for (const x of fresh) {
      const r = (out[x.i] as { r: StoreResult }).r;
      r.stored++;
      told.push({ device: x.device, e: x.e, effMs: x.r.eff });
      if (x.e.token && x.r.code === null && !flagged.has(keyOf(x.device, x.e.seq))) {
        dirty.set(`${x.e.token}\u0000${x.r.day}`, [x.e.token, x.r.day]);
        r.settle++;
      }
    }
    if (dirty.size > 0) this.dirty.run(JSON.stringify([...dirty.values()]));
    onJournalsStored(this.db, told, nowMs); // guardians' messages, in this transaction (notify/outbox.ts)

    // the acks: lock the devices' rows first (sorted), then the highest contiguous seq stored from 1
    const ids = [...touched].sort();
    this.touch.run(at, JSON.stringify(ids.map((d) => [d])));
    const run = new Map<string, number>();
    for (const d of ids) {
      let m = before.get(d) ?? 0;
      const seqs = present.get(d)!;
      while (seqs.has(m + 1)) m++;
      run.set(d, m);
    }
    for (const { device } of this.nextOf.all(JSON.stringify(ids.map((d) => [d, run.get(d)! + 1]))) as { device: string }[]) {
      let acked = run.get(device)!;
      for (;;) {
        const seqs = this.next.all(device, acked) as number[];
        let moved = false;
        for (const s of seqs) {
          if (s !== acked + 1) break;
          acked = s;
          moved = true;
        }
        if (!moved || seqs.length < 5000) break;
      }
      run.set(device, acked);
    }
    const upTo = new Map<string, number>();
    for (const r of this.setAcked.all(JSON.stringify(ids.map((d) => [d, run.get(d)!]))) as { id: string; acked: number }[]) upTo.set(r.id, r.acked);
    uploads.forEach((u, i) => {
      const o = out[i]!;
      if (o.ok) o.r.upTo = upTo.get(u.device) ?? 0;
    });
    return out;
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

/**
 * A journal entry flagged when it was stored (a wrong clock, an impossible trip): it stays out of settlement. Settlement's
 * own codes (an unknown route, not a fare) are recomputed on every replay and do not count, or whether a later entry is
 * flagged would depend on whether settlement ran before the earlier one arrived.
 */
function flaggedAtIngest(code: string | null): boolean {
  return code === ErrorCode.SettlementTimeOutOfRange || code === ErrorCode.SettlementImpossibleTrip;
}
