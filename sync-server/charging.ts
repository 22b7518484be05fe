import type { Logger } from '../protocol/log.js';
import { markDirty, type Dirty } from './materialize.js';
import type { Db } from './registry.js';

/**
 * Deferred charging of full fares. The journal's paid taps wait in `charges`
 * (status pending); a Charger settles them. A declined charge puts the card on
 * the stop-list (reason charge-declined); a recorded repayment takes it off.
 */
export interface ChargeRequest {
  token: string;
  amountKopecks: number;
  ref: string; // device:seq
}
export type ChargeResult = { ok: true } | { ok: false; reason: string };

export interface Charger {
  charge(req: ChargeRequest): Promise<ChargeResult>;
}

/** Built-in simulator: declines the tokens listed in decline_tokens, accepts the rest. */
export class SimulatedCharger implements Charger {
  constructor(private readonly db: Db) {}
  charge(req: ChargeRequest): Promise<ChargeResult> {
    const hit = this.db.prepare('SELECT 1 FROM decline_tokens WHERE token = ?').get(req.token);
    return Promise.resolve(hit ? { ok: false, reason: 'declined by issuer (simulated)' } : { ok: true });
  }
}

export class ChargingQueue {
  private running = false;
  constructor(
    private readonly db: Db,
    private readonly charger: Charger,
    private readonly onStopListChanged: (dirty: Dirty) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Settle every pending charge; returns how many were declined. */
  async runOnce(now = new Date()): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const pending = this.db.prepare("SELECT device, seq, token, amount FROM charges WHERE status = 'pending' ORDER BY rowid LIMIT 10000").all() as {
        device: string;
        seq: number;
        token: string;
        amount: number;
      }[];
      const dirty: Dirty = new Map();
      const set = this.db.prepare('UPDATE charges SET status = ?, reason = ?, updated_at = ? WHERE device = ? AND seq = ?');
      const stop = this.db.prepare("INSERT INTO stoplist(token, reason, since) VALUES (?, 'charge-declined', ?) ON CONFLICT(token) DO NOTHING");
      let declined = 0;
      for (const p of pending) {
        let r: ChargeResult;
        try {
          r = await this.charger.charge({ token: p.token, amountKopecks: p.amount, ref: `${p.device}:${p.seq}` });
        } catch (e) {
          this.log.warn({ err: String(e), token: p.token }, 'charger failed; will retry');
          continue;
        }
        if (r.ok) set.run('charged', null, now.toISOString(), p.device, p.seq);
        else {
          declined++;
          this.db.transaction(() => {
            set.run('declined', r.reason, now.toISOString(), p.device, p.seq);
            stop.run(p.token, now.toISOString().slice(0, 10));
          })();
          markDirty(dirty, 'stoplist', p.token);
          this.log.info({ token: p.token, amount: p.amount }, 'charge declined: card goes on the stop-list');
        }
      }
      if (dirty.size > 0) await this.onStopListChanged(dirty);
      return declined;
    } finally {
      this.running = false;
    }
  }

  /** Record a repayment: declined charges of the token are settled and the card leaves the stop-list. */
  async repay(token: string, now = new Date()): Promise<{ settled: number; unblocked: boolean }> {
    const dirty: Dirty = new Map();
    const res = this.db.transaction(() => {
      const settled = this.db.prepare("UPDATE charges SET status = 'repaid', updated_at = ? WHERE token = ? AND status = 'declined'").run(now.toISOString(), token).changes;
      const unblocked = this.db.prepare("DELETE FROM stoplist WHERE token = ? AND reason = 'charge-declined'").run(token).changes > 0;
      return { settled, unblocked };
    })();
    if (res.unblocked) {
      markDirty(dirty, 'stoplist', token);
      await this.onStopListChanged(dirty);
    }
    return res;
  }

  setDeclined(tokens: string[]): void {
    const ins = this.db.prepare('INSERT OR IGNORE INTO decline_tokens(token) VALUES (?)');
    this.db.transaction(() => tokens.forEach((t) => ins.run(t)))();
  }
}
