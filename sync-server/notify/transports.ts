import { createHmac } from 'node:crypto';
import type { Channel } from './guardians.js';

/** One message on its way to one guardian. `key` is its idempotency key: a receiver that saw it already drops it. */
export interface OutMessage {
  key: string;
  event: string;
  to: string;
  /** The webhook's HMAC secret (webhook only). */
  secret: string | null;
  subject: string;
  text: string;
  /** Fields of the webhook's JSON body beside key, event and text. */
  fields: Record<string, unknown>;
}

/** Why a send failed; a permanent failure is not retried (the message is `failed` in status). */
export class SendError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/** Every channel sits behind this: resolve when the other side accepted the message, else throw (SendError or any error: transient). */
export interface Transport {
  readonly channel: Channel;
  send(m: OutMessage): Promise<void>;
  close(): void;
}

/**
 * E-mail over SMTP (nodemailer, pooled connections). The key is the Message-ID (`<key@resident-card>`) and the
 * header X-RC-Idempotency-Key. A 5xx answer is permanent; a 4xx answer or a connection failure is retried.
 */
export class SmtpTransport implements Transport {
  readonly channel = 'email' as const;
  // loaded at the first message: the CLI's commands share this module graph and need no mailer
  private t: Promise<Mailer> | null = null;
  constructor(
    private readonly smtpUrl: string,
    private readonly from: string,
  ) {}
  private mailer(): Promise<Mailer> {
    // pooled: a few connections kept open (a new connection per message costs more than the message); bounded waits, so
    // an unreachable server fails an attempt (retried later) instead of holding the dispatcher
    this.t ??= import('nodemailer').then((m) =>
      m.default.createTransport({
        url: this.smtpUrl,
        pool: true,
        maxConnections: 5,
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 30_000,
      }),
    );
    return this.t;
  }
  async send(m: OutMessage): Promise<void> {
    try {
      await (
        await this.mailer()
      ).sendMail({
        from: this.from,
        to: m.to,
        subject: m.subject,
        text: m.text,
        messageId: `<${m.key}@resident-card>`,
        headers: { 'X-RC-Idempotency-Key': m.key, 'X-RC-Event': m.event },
      });
    } catch (e) {
      const code = (e as { responseCode?: number }).responseCode;
      throw new SendError(`smtp: ${(e as Error).message}`.slice(0, 300), code !== undefined && code >= 500 && code < 600);
    }
  }
  close(): void {
    void this.t?.then((t) => t.close());
  }
}
type Mailer = ReturnType<typeof import('nodemailer').createTransport>;

/** The webhook signature: `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` with the endpoint's secret. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * A signed webhook (the region's mobile app, a messenger gateway): POST of a JSON body with
 *   Idempotency-Key: <key>, X-RC-Timestamp: <unix seconds>, X-RC-Signature: sha256=<hex HMAC of "<timestamp>.<body>">.
 * A 2xx answer is delivery; 408, 429 and 5xx are retried; any other 4xx is permanent.
 */
export class WebhookTransport implements Transport {
  readonly channel = 'webhook' as const;
  constructor(
    private readonly timeoutMs = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}
  async send(m: OutMessage): Promise<void> {
    if (!m.secret) throw new SendError('webhook: the guardian has no secret', true);
    const body = JSON.stringify({ key: m.key, event: m.event, subject: m.subject, text: m.text, ...m.fields });
    const ts = String(Math.floor(this.clock() / 1000));
    let res: Response;
    try {
      res = await fetch(m.to, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'idempotency-key': m.key,
          'x-rc-timestamp': ts,
          'x-rc-signature': webhookSignature(m.secret, ts, body),
        },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new SendError(`webhook: ${(e as Error).message}`.slice(0, 300), false);
    }
    await res.body?.cancel().catch(() => undefined);
    if (res.ok) return;
    const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
    throw new SendError(`webhook: HTTP ${res.status}`, permanent);
  }
  close(): void {}
}
