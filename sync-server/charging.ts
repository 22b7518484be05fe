import type { Logger } from '../protocol/log.js';
import { markDirty, type Dirty } from './materialize.js';
import type { Db } from './registry.js';
import { tableExists } from './db/sql.js';
import { Settlement } from './settlement/engine.js';

/**
 * Aggregated charging. The back office settles each card's taps (settlement/),
 * and when a service day closes the card's settled fares of that day become one
 * charge (`charges`, status pending); a Charger settles it. The amount is always
 * the back office's, never a device's. A declined charge is retried by the retry
 * policy (`attempts` charges spread evenly over `overDays` days); only when the
 * last attempt is declined too does the card go on the stop-list (reason
 * charge-declined). A recorded repayment takes it off.
 */
export interface RetryPolicy {
  /** How many times a charge is tried before the card is stop-listed (1: at the first decline). */
  attempts: number;
  /** Over how many days the attempts are spread (the retries are evenly spaced). */
  overDays: number;
}
export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, overDays: 2 };

/** When the next attempt after `made` declined attempts is due (ms after the decline). */
function retryDelayMs(p: RetryPolicy): number {
  return p.attempts > 1 ? Math.round((p.overDays * 86_400_000) / (p.attempts - 1)) : 0;
}
export interface ChargeRequest {
  token: string;
  amountKopecks: number;
  /** The service day charged (YYYY-MM-DD). */
  serviceDay: string;
  ref: string; // charge:<seq>
}
export type ChargeResult = { ok: true } | { ok: false; reason: string };

export interface Charger {
  charge(req: ChargeRequest): Promise<ChargeResult>;
}

/** Built-in simulator: declines the tokens listed in decline_tokens, accepts the rest. */
export class SimulatedCharger implements Charger {
  private readonly declines;
  constructor(db: Db) {
    this.declines = db.prepare('SELECT 1 FROM decline_tokens WHERE token = ?');
  }
  charge(req: ChargeRequest): Promise<ChargeResult> {
    const hit = this.declines.get(req.token);
    return Promise.resolve(hit ? { ok: false, reason: 'declined by issuer (simulated)' } : { ok: true });
  }
}

/**
 * When settlement runs in the server. A journal batch only marks cards dirty (ingest.ts) and `kick`s the queue;
 * settlement starts `debounceMs` later (a burst of uploads settles together) and runs in slices of about
 * `sliceMs`, each one transaction, yielding to the event loop between them: a journal-ack or an HTTP request
 * never waits for settlement longer than one slice. While uploads keep coming, settlement takes one slice per
 * `debounceMs` (ingest first); once they stop, it runs slice after slice until everything is settled.
 */
export interface SettleSchedule {
  debounceMs: number;
  sliceMs: number;
}
const DEFAULT_SCHEDULE: SettleSchedule = { debounceMs: 100, sliceMs: 5 };

/** Let pending I/O (MQTT messages, HTTP requests) run before the next slice. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class ChargingQueue {
  /** The last run asked for (runs never overlap: each waits for the one before). */
  private tail: Promise<number> = Promise.resolve(0);
  /** A run without a given instant that has not started yet: later such requests join it. */
  private waiting: Promise<number> | null = null;
  private kickTimer: NodeJS.Timeout | null = null;
  /** When the last journal batch asked for settlement (performance.now()). */
  private lastKick = -Infinity;
  private stopped = false;
  readonly schedule: SettleSchedule;
  constructor(
    private readonly db: Db,
    private readonly charger: Charger,
    private readonly onStopListChanged: (dirty: Dirty) => Promise<void>,
    private readonly log: Logger,
    readonly settlement: Settlement = new Settlement(db),
    readonly retry: RetryPolicy = DEFAULT_RETRY,
    schedule: Partial<SettleSchedule> = {},
  ) {
    if (!Number.isInteger(retry.attempts) || retry.attempts < 1 || !(retry.overDays >= 0)) throw new Error('retry policy: attempts >= 1, overDays >= 0');
    this.schedule = { ...DEFAULT_SCHEDULE, ...schedule };
  }

  /** New journal entries wait for settlement: run soon (debounced), never in the caller's turn of the event loop. */
  kick(): void {
    this.lastKick = performance.now();
    if (this.stopped || this.kickTimer) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = null;
      this.runOnce().catch((e) => this.log.warn({ err: String(e) }, 'charging failed'));
    }, this.schedule.debounceMs);
    this.kickTimer.unref();
  }

  /** No more runs; resolves when the current one has stopped (at its next slice). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.kickTimer) clearTimeout(this.kickTimer);
    this.kickTimer = null;
    await this.tail.catch(() => undefined);
  }

  /**
   * Settle the journal's dirty days, close the service days that ended, then charge every pending charge; returns how many were declined.
   * Runs one after the other: a call during a run waits for it, then runs (so when it resolves, everything dirty before the call is settled).
   */
  runOnce(now?: Date): Promise<number> {
    if (now === undefined && this.waiting) return this.waiting;
    const p: Promise<number> = this.tail
      .catch(() => 0)
      .then(() => {
        if (this.waiting === p) this.waiting = null; // started: a later request runs after this one
        return this.run(now ?? new Date());
      });
    if (now === undefined) this.waiting = p;
    this.tail = p;
    return p;
  }

  private async run(now: Date): Promise<number> {
    if (this.stopped) return 0;
    const slice = this.schedule.sliceMs;
    const s = { cards: 0, taps: 0, adjustments: 0 };
    for (;;) {
      const r = this.settlement.settleSlice(now, slice);
      s.cards += r.report.cards;
      s.taps += r.report.taps;
      s.adjustments += r.report.adjustments;
      if (!r.more) break;
      await this.pause();
      if (this.stopped) return 0;
    }
    let created = 0;
    for (;;) {
      const r = this.settlement.closeSlice(now, slice);
      created += r.created;
      if (!r.more) break;
      await yieldToLoop();
      if (this.stopped) return 0;
    }
    if (s.cards > 0 || created > 0) this.log.debug({ cards: s.cards, taps: s.taps, adjustments: s.adjustments, charges: created }, 'settled');
    return this.chargePending(now);
  }

  /** Between slices: the next at once when no upload came within `debounceMs`; while uploads keep coming, one slice per `debounceMs` (ingest first). */
  private pause(): Promise<void> {
    const busy = performance.now() - this.lastKick < this.schedule.debounceMs;
    return busy ? new Promise((resolve) => setTimeout(resolve, this.schedule.debounceMs)) : yieldToLoop();
  }

  private async chargePending(now: Date): Promise<number> {
    const pending = this.db
      .prepare(
        "SELECT seq, token, service_day, amount, attempts FROM charges WHERE status = 'pending' AND (retry_at IS NULL OR retry_at <= ?) ORDER BY seq LIMIT 10000",
      )
      .all(now.toISOString()) as { seq: number; token: string; service_day: string; amount: number; attempts: number }[];
    const dirty: Dirty = new Map();
    const set = this.db.prepare('UPDATE charges SET status = ?, reason = ?, updated_at = ?, attempts = attempts + 1, retry_at = NULL WHERE seq = ?');
    const later = this.db.prepare("UPDATE charges SET reason = ?, updated_at = ?, attempts = attempts + 1, retry_at = ? WHERE seq = ? AND status = 'pending'");
    const stop = this.db.prepare("INSERT INTO stoplist(token, reason, since) VALUES (?, 'charge-declined', ?) ON CONFLICT(token) DO NOTHING");
    let declined = 0;
    let t0 = performance.now();
    for (const p of pending) {
      // a simulated or fast charger answers without leaving the microtask queue: give the event loop its turn
      if (performance.now() - t0 >= this.schedule.sliceMs) {
        await yieldToLoop();
        if (this.stopped) break;
        t0 = performance.now();
      }
      let r: ChargeResult;
      try {
        r = await this.charger.charge({ token: p.token, amountKopecks: p.amount, serviceDay: p.service_day, ref: `charge:${p.seq}` });
      } catch (e) {
        this.log.warn({ err: String(e), token: p.token }, 'charger failed; will retry');
        continue;
      }
      if (r.ok) set.run('charged', null, now.toISOString(), p.seq);
      else if (p.attempts + 1 < this.retry.attempts) {
        const at = new Date(now.getTime() + retryDelayMs(this.retry)).toISOString();
        later.run(r.reason, now.toISOString(), at, p.seq);
        this.log.info(
          { token: p.token, serviceDay: p.service_day, attempt: p.attempts + 1, of: this.retry.attempts, retryAt: at },
          'charge declined: retried later',
        );
      } else {
        declined++;
        this.db.transaction(() => {
          set.run('declined', r.reason, now.toISOString(), p.seq);
          stop.run(p.token, this.settlement.serviceDay(now.getTime())); // the operator's service day, not the UTC date
        })();
        markDirty(dirty, 'stoplist', p.token);
        this.log.info({ token: p.token, serviceDay: p.service_day, amount: p.amount }, 'charge declined on its last attempt: card goes on the stop-list');
      }
    }
    if (dirty.size > 0) await this.onStopListChanged(dirty);
    return declined;
  }

  /** Record a repayment: declined charges of the token are settled and the card leaves the stop-list. */
  async repay(token: string, now = new Date()): Promise<{ settled: number; unblocked: boolean }> {
    const dirty: Dirty = new Map();
    const res = this.db.transaction(() => {
      const at = now.toISOString();
      let settled = this.db.prepare("UPDATE charges SET status = 'repaid', updated_at = ? WHERE token = ? AND status = 'declined'").run(at, token).changes;
      if (this.hasV1) {
        settled += this.db.prepare("UPDATE charges_v1 SET status = 'repaid', updated_at = ? WHERE token = ? AND status = 'declined'").run(at, token).changes;
      }
      const unblocked = this.db.prepare("DELETE FROM stoplist WHERE token = ? AND reason = 'charge-declined'").run(token).changes > 0;
      return { settled, unblocked };
    })();
    if (res.unblocked) {
      markDirty(dirty, 'stoplist', token);
      await this.onStopListChanged(dirty);
    }
    return res;
  }

  /** Per-tap charges of a registry migrated from schema 1 (their declines are repaid too). */
  private get hasV1(): boolean {
    return tableExists(this.db, 'charges_v1');
  }

  setDeclined(tokens: string[]): void {
    const ins = this.db.prepare('INSERT INTO decline_tokens(token) VALUES (?) ON CONFLICT DO NOTHING');
    this.db.transaction(() => tokens.forEach((t) => ins.run(t)))();
  }
}
