import { randomUUID } from 'node:crypto';
import type { Connection } from '../../protocol/bank-api.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import { SendError, WebhookTransport } from '../notify/transports.js';
import type { Db } from '../registry.js';
import type { BankRow } from './banks.js';

/**
 * Status callbacks to banks: a durable outbox (bank_outbox), written in the transaction of the status change, sent by
 * the guardians' signed webhook transport (notify/transports.ts: POST JSON, Idempotency-Key, X-RC-Timestamp,
 * X-RC-Signature = sha256=HMAC-SHA256(secret, "<timestamp>.<body>")). Delivered at least once: the event id is the
 * Idempotency-Key and the body's `key`, so a bank drops one it saw. A failure is retried with exponential backoff
 * (baseMs · 2^attempts, at most maxMs) until `attempts` tries; a 4xx other than 408/429 is given up at once (failed).
 * The body carries the connection as GET /v1/bank/connections/:id answers it: masked PAN only.
 */
export interface OutboxOptions {
  intervalMs: number;
  baseMs: number;
  maxMs: number;
  attempts: number;
  timeoutMs: number;
}
export const DEFAULT_OUTBOX: OutboxOptions = { intervalMs: 1000, baseMs: 5000, maxMs: 3_600_000, attempts: 20, timeoutMs: 10_000 };

interface OutRow {
  event_id: string;
  bank_id: string;
  body: string;
  attempts: number;
}

const SUBJECT: Record<Connection['status'], string> = {
  accepted: 'card connection accepted',
  active: 'card connected: in the published lists',
  replaced: 'card replaced by another card of the person',
  stopped: 'card no longer connected',
};

export class BankOutbox {
  private readonly o: OutboxOptions;
  private readonly transport: WebhookTransport;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    o: Partial<OutboxOptions> = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.o = { ...DEFAULT_OUTBOX, ...o };
    this.transport = new WebhookTransport(this.o.timeoutMs, clock);
  }

  /** Queue a status event for the bank (inside the caller's transaction); banks without a callback URL poll instead. */
  enqueue(bank: BankRow, c: Connection): string | null {
    if (!bank.callback_url) return null;
    const eventId = randomUUID();
    const body = { eventId, connection: c, subject: SUBJECT[c.status], text: `connection ${c.id} (${c.masked}): ${c.status}` };
    const now = this.clock();
    this.db
      .prepare('INSERT INTO bank_outbox(event_id, bank_id, connection_id, body, state, attempts, next_ms, created_ms) VALUES (?,?,?,?,?,0,?,?)')
      .run(eventId, bank.id, c.id, JSON.stringify(body), 'pending', now, now);
    queueMicrotask(() => this.kick());
    return eventId;
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.o.intervalMs);
    this.timer.unref();
    this.kick();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  kick(): void {
    if (this.timer === null) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.tick()
      .catch((e: unknown) => this.log.error({ err: String(e) }, 'bank callbacks not sent'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Send what is due now (one pass); resolves when every attempt of the pass ended. */
  async tick(): Promise<void> {
    const now = this.clock();
    const due = this.db
      .prepare("SELECT event_id, bank_id, body, attempts FROM bank_outbox WHERE state = 'pending' AND next_ms <= ? ORDER BY next_ms LIMIT 50")
      .all(now) as OutRow[];
    await Promise.all(due.map((r) => this.deliver(r)));
  }

  private async deliver(r: OutRow): Promise<void> {
    const bank = this.db.prepare('SELECT callback_url, callback_secret FROM banks WHERE id = ?').get(r.bank_id) as
      { callback_url: string | null; callback_secret: string | null } | undefined;
    const body = JSON.parse(r.body) as { eventId: string; connection: Connection; subject: string; text: string };
    try {
      if (!bank?.callback_url) throw new SendError('the bank has no callback URL any more', true);
      await this.transport.send({
        key: r.event_id,
        event: 'connection.status',
        to: bank.callback_url,
        secret: bank.callback_secret,
        subject: body.subject,
        text: body.text,
        fields: { eventId: body.eventId, connection: body.connection },
      });
      this.db
        .prepare("UPDATE bank_outbox SET state = 'sent', attempts = attempts + 1, sent_ms = ?, last_error = NULL WHERE event_id = ?")
        .run(this.clock(), r.event_id);
    } catch (e) {
      const permanent = e instanceof SendError && e.permanent;
      const attempts = r.attempts + 1;
      const failed = permanent || attempts >= this.o.attempts;
      const next = this.clock() + Math.min(this.o.maxMs, this.o.baseMs * 2 ** (attempts - 1));
      this.db
        .prepare('UPDATE bank_outbox SET state = ?, attempts = ?, next_ms = ?, last_error = ? WHERE event_id = ?')
        .run(failed ? 'failed' : 'pending', attempts, next, String((e as Error).message).slice(0, 300), r.event_id);
      this.log.warn(
        { code: ErrorCode.BankCallbackFailed, bank: r.bank_id, event: r.event_id, attempts, failed, err: (e as Error).message },
        failed ? 'bank callback given up' : 'bank callback failed: retried later',
      );
    }
  }
}
