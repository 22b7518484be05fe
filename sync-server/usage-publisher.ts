import { publishedCategoryTable } from './categories.js';
import type { KeyObject } from 'node:crypto';
import { BUILT_IN_TABLE, type CategoryTable } from '../protocol/categories.js';
import type { TransitEntry } from '../protocol/lists.js';
import type { Logger } from '../protocol/log.js';
import { localTime } from '../protocol/rules/time.js';
import type { Tariff } from '../protocol/rules-schema.js';
import { RECORD_SIZE, decodeRecords } from '../protocol/wire/codec.js';
import { topics } from '../protocol/wire/topics.js';
import { deviceKey, encodeUsage, sealUsage, writeUsageCard, type UsageDay, type UsageWatermark } from '../protocol/wire/usage-codec.js';
import type { Transport } from './publisher.js';
import type { Db } from './registry.js';
import { publishedTariff, type JournalRow } from './settlement/engine.js';
import { dayBefore, dayLowerBoundMs, settlementOptions, type SettlementOptions } from './settlement/days.js';
import { fleetUsage, usageCards } from './settlement/usage.js';

/**
 * Publishes fleet usage (issue 10 item 4): per card active in the current
 * windows, what every device's journal says, counted up to each device's
 * acknowledged seq (`devices.acked`: contiguous, on disk), with those seqs as
 * watermarks, so a device can add exactly its own taps above its watermark.
 *
 * tick() (a 1 s timer in the server): the devices whose ack moved since the
 * last tick name the journal rows that are new; their cards are recomputed
 * (`fleetUsage` over the card's rows of the month) and a delta with the changed
 * cards and the moved watermarks is published, only when something changed. A
 * new day (or the first tick) publishes a snapshot; the snapshot is re-sent
 * retained at most every `snapshotEveryMs`, so a device that missed a delta (a
 * gap) catches up by then. Versions are the tick's epoch seconds: they only go
 * forward, also across restarts.
 */
export interface UsagePublisherOptions {
  settlement?: Partial<SettlementOptions>;
  /** A snapshot is re-published (retained) this often when deltas were sent since (default 60 s). */
  snapshotEveryMs?: number;
  /** Expiry of a usage message (default 2 days: an older one is not fleet usage of today). */
  ttlMs?: number;
  /** Cards recomputed per tick at most (default 2000); the rest wait for the next ticks, so a tick never holds the event loop long. */
  maxCardsPerTick?: number;
}

export interface UsageTick {
  version: number;
  snapshot: Buffer | null;
  delta: Buffer | null;
  cards: number;
  changed: number;
}

export class UsagePublisher {
  private readonly o: SettlementOptions;
  private readonly snapshotEveryMs: number;
  private readonly ttlMs: number;
  private readonly maxCards: number;
  /** Cards whose journal grew and that are not recomputed yet (a big upload or a new day spreads over ticks). */
  private readonly pending = new Set<string>();
  private transport: Transport | null = null;
  private readonly acked = new Map<string, number>();
  private readonly cards = new Map<string, Buffer>(); // token → 24-byte card record of `day`
  private day: UsageDay | null = null;
  private version = 0;
  private lastSnapshotMs = 0;
  private deltasSinceSnapshot = 0;
  private readonly st;

  constructor(
    private readonly db: Db,
    private readonly key: KeyObject,
    private readonly log: Logger,
    opts: UsagePublisherOptions = {},
  ) {
    this.o = settlementOptions(opts.settlement);
    this.snapshotEveryMs = opts.snapshotEveryMs ?? 60_000;
    this.ttlMs = opts.ttlMs ?? 2 * 86_400_000;
    this.maxCards = opts.maxCardsPerTick ?? 2000;
    this.st = {
      devices: db.prepare('SELECT id, acked FROM devices'),
      newTokens: db.prepare('SELECT DISTINCT token FROM journal WHERE device = ? AND seq > ? AND seq <= ? AND token IS NOT NULL').pluck(),
      monthTokens: db.prepare('SELECT DISTINCT token FROM journal WHERE eff_ms >= ? AND token IS NOT NULL').pluck(),
      rows: db.prepare(
        `SELECT j.device, j.seq, j.token, j.kind, j.result, j.reason, j.fare, j.route, j.vehicle, j.flags, j.eff_ms, j.service_day,
                j.settled_fare, j.settled_reason, j.settle_code
         FROM journal j JOIN devices d ON d.id = j.device WHERE j.token = ? AND j.eff_ms >= ? AND j.seq <= d.acked`,
      ),
      transit: db.prepare("SELECT rec FROM entries WHERE scope = 'transit' AND token = ?").pluck(),
    };
  }

  private soonTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /**
   * An acknowledgement moved (issue 10: a tap on one bus in another bus's usage within 2 s): tick now instead of at
   * the next 1 s timer, or, when a tick already took this second's version, at the start of the next second (versions
   * are epoch seconds, at most one per second, so they still only go forward across restarts). A burst of acks makes
   * one tick. Errors are logged, as the timer's.
   */
  soon(): void {
    if (this.soonTimer || this.stopped) return;
    const wait = Math.max(0, (this.version + 1) * 1000 - Date.now());
    this.soonTimer = setTimeout(() => {
      this.soonTimer = null;
      if (this.stopped) return;
      try {
        this.tick();
      } catch (e) {
        this.log.warn({ err: String(e) }, 'fleet usage not computed');
      }
    }, wait);
    this.soonTimer.unref();
  }

  /** No more ticks from `soon` (the server closes). */
  stop(): void {
    this.stopped = true;
    if (this.soonTimer) clearTimeout(this.soonTimer);
    this.soonTimer = null;
  }

  setTransport(t: Transport | null): void {
    this.transport = t;
  }

  /** The service day of an instant: its local date and first instant (whole minutes of offset). */
  dayOf(nowMs: number): UsageDay {
    const lt = localTime(nowMs, this.o.timeZone);
    const [h, m] = lt.hm.split(':').map(Number) as [number, number];
    return { date: lt.date, startMs: Math.floor(nowMs / 60_000) * 60_000 - (h * 60 + m) * 60_000 };
  }

  /** The published categories while a tick computes: the transit list carries an operator-defined category by its wire id. */
  private cats: CategoryTable = BUILT_IN_TABLE;

  private transitOf = (token: string): TransitEntry | null => {
    const rec = this.st.transit.get(token) as Buffer | undefined;
    return rec ? ((decodeRecords('transit', rec, false, this.cats).entries[0] as TransitEntry | undefined) ?? null) : null;
  };

  /** Recompute what changed; returns the messages it made (and publishes them when a transport is set). */
  tick(now = new Date()): UsageTick | null {
    const nowMs = now.getTime();
    const tariff = publishedTariff(this.db);
    if (!tariff) return null;
    const day = this.dayOf(nowMs);
    const newDay = !this.day || this.day.date !== day.date;
    const devices = this.st.devices.all() as { id: string; acked: number }[];
    const moved: UsageWatermark[] = [];
    const pending = this.pending;
    for (const d of devices) {
      const was = newDay ? -1 : (this.acked.get(d.id) ?? 0);
      if (d.acked === was) continue;
      if (!newDay) for (const t of this.st.newTokens.all(d.id, Math.min(was, d.acked), d.acked) as string[]) pending.add(t);
      this.acked.set(d.id, d.acked);
      moved.push({ key: deviceKey(d.id), seq: d.acked });
    }
    const lower = dayLowerBoundMs(dayBefore(`${day.date.slice(0, 7)}-01`));
    if (newDay) {
      // a new day: every card of the month again (quota counters, marks from before midnight), spread over ticks
      this.cards.clear();
      pending.clear();
      for (const t of this.st.monthTokens.all(lower) as string[]) pending.add(t);
    }
    // A card not recomputed yet may lag its devices' watermarks: a bus then sees fewer of the fleet's taps for it, never
    // fewer of its own (the merge keeps max(own, fleet + own above the watermark)).
    const dirty: string[] = [];
    for (const t of pending) {
      if (dirty.length >= this.maxCards) break;
      dirty.push(t);
    }
    for (const t of dirty) pending.delete(t);
    const ups: Buffer[] = [];
    const removes: string[] = [];
    for (const [token, rec] of this.compute(dirty, tariff, day, lower, nowMs)) {
      const cur = this.cards.get(token);
      if (rec === null) {
        if (cur) {
          this.cards.delete(token);
          removes.push(token);
        }
      } else if (!cur || !cur.equals(rec)) {
        this.cards.set(token, rec);
        ups.push(rec);
      }
    }
    const version = Math.max(this.version + 1, Math.floor(nowMs / 1000));
    const from = this.version;
    let snapshot: Buffer | null = null;
    let delta: Buffer | null = null;
    if (newDay || nowMs - this.lastSnapshotMs >= this.snapshotEveryMs) {
      if (newDay || ups.length || removes.length || moved.length || this.deltasSinceSnapshot > 0) {
        snapshot = sealUsage(null, version, this.snapshotRecords(day), now, this.ttlMs, this.key);
        this.lastSnapshotMs = nowMs;
        this.deltasSinceSnapshot = 0;
      }
    }
    if (!newDay && (ups.length || removes.length || moved.length)) {
      // encodeUsage gives the day record, then the watermarks and removes: the changed cards go right after the day
      const body = Buffer.concat([
        encodeUsage(day, [], moved, removes).subarray(0, RECORD_SIZE),
        ...ups,
        encodeUsage(day, [], moved, removes).subarray(RECORD_SIZE),
      ]);
      delta = sealUsage(from, version, body, now, this.ttlMs, this.key);
      this.deltasSinceSnapshot++;
    }
    if (!snapshot && !delta) return null;
    this.day = day;
    this.version = version;
    const r = { version, snapshot, delta, cards: this.cards.size, changed: ups.length + removes.length };
    void this.send(r);
    return r;
  }

  /** Every card record of the day, in token order, with every device's watermark. */
  private snapshotRecords(day: UsageDay): Buffer {
    const wm = [...this.acked].map(([id, seq]) => ({ key: deviceKey(id), seq }));
    const head = encodeUsage(day, [], wm);
    const cards = [...this.cards.keys()].sort().map((t) => this.cards.get(t)!);
    return Buffer.concat([head.subarray(0, RECORD_SIZE), ...cards, head.subarray(RECORD_SIZE)]);
  }

  private *compute(tokens: string[], tariff: Tariff, day: UsageDay, lower: number, nowMs: number): Generator<[string, Buffer | null]> {
    const cats = publishedCategoryTable(this.db); // a category's wire id, as the lists carry it
    this.cats = cats;
    for (const token of tokens) {
      const rows = this.st.rows.all(token, lower) as JournalRow[];
      const u = usageCards(fleetUsage(rows, this.transitOf, tariff, this.o, nowMs), tariff, day.date)[0];
      if (!u) {
        yield [token, null];
        continue;
      }
      const rec = Buffer.alloc(RECORD_SIZE);
      writeUsageCard(rec, 0, u, day, cats);
      yield [token, rec];
    }
  }

  private async send(r: UsageTick): Promise<void> {
    const t = this.transport;
    if (!t) return;
    try {
      if (r.delta) await t.publish(topics.usageDelta(), r.delta, false);
      if (r.snapshot) await t.publish(topics.usageSnapshot(), r.snapshot, true);
    } catch (e) {
      this.log.warn({ err: String(e) }, 'usage not published (the next snapshot carries it)');
    }
  }

  /** After a (re)connection: the whole usage again, retained. */
  async republish(now = new Date()): Promise<void> {
    if (!this.day || !this.transport) return;
    await this.transport.publish(topics.usageSnapshot(), sealUsage(null, this.version, this.snapshotRecords(this.day), now, this.ttlMs, this.key), true);
  }
}
