/**
 * Receivers for the guardians' notifications, started by the tests on free ports:
 *  - a real SMTP server (the smtp-server package) that keeps each accepted mail, decoded, and can be told to
 *    refuse (a 4xx answer) to test retries;
 *  - a real HTTP receiver for the signed webhook that checks the signature and timestamp as a gateway would,
 *    and can be told to answer 503.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Mail {
  to: string;
  messageId: string;
  key: string;
  event: string;
  subject: string;
  text: string;
  raw: string;
  at: number;
}

export interface SmtpSink {
  url: string;
  port: number;
  mails: Mail[];
  /** While set, every DATA is answered with this SMTP code (e.g. 451: retry later) and nothing is kept. */
  refuseWith: number | null;
  refused: number;
  onMail?: (m: Mail) => void;
  close(): Promise<void>;
}

function decodeWords(s: string): string {
  // RFC 2047 encoded words; adjacent ones are joined (whitespace between them is dropped)
  return s
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)(\s+(?==\?))?/g, '$1')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, _cs: string, enc: string, data: string) => {
      if (enc.toUpperCase() === 'B') return Buffer.from(data, 'base64').toString('utf8');
      return decodeQp(data.replace(/_/g, ' '));
    });
}

function decodeQp(s: string): string {
  const bytes: number[] = [];
  const t = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(t.slice(i + 1, i + 3))) {
      bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(t[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** A single-part text mail as nodemailer writes it: headers (unfolded, decoded) and the decoded body. */
export function parseMail(raw: string): { headers: Map<string, string>; text: string } {
  const cut = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, cut).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).toLowerCase(), decodeWords(line.slice(i + 1).trim()));
  }
  const body = raw.slice(cut + 4);
  const cte = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  const text = cte === 'base64' ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8') : cte === 'quoted-printable' ? decodeQp(body) : body;
  return { headers, text: text.replace(/\r\n/g, '\n').trim() };
}

export async function startSmtpSink(port = 0): Promise<SmtpSink> {
  const sink: SmtpSink = {
    url: '',
    port: 0,
    mails: [],
    refuseWith: null,
    refused: 0,
    close: async () => undefined,
  };
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    onData(stream, session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        if (sink.refuseWith !== null) {
          sink.refused++;
          return cb(Object.assign(new Error('try again later'), { responseCode: sink.refuseWith }));
        }
        const raw = Buffer.concat(parts).toString('utf8');
        const { headers, text } = parseMail(raw);
        const m: Mail = {
          to: session.envelope.rcptTo.map((r) => r.address).join(','),
          messageId: headers.get('message-id') ?? '',
          key: headers.get('x-rc-idempotency-key') ?? '',
          event: headers.get('x-rc-event') ?? '',
          subject: headers.get('subject') ?? '',
          text,
          raw,
          at: Date.now(),
        };
        sink.mails.push(m);
        sink.onMail?.(m);
        cb();
      });
    },
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, '127.0.0.1', () => res());
  });
  const addr = (server as unknown as { server: Server }).server.address() as AddressInfo;
  sink.port = addr.port;
  sink.url = `smtp://127.0.0.1:${addr.port}`;
  sink.close = () => new Promise<void>((res) => server.close(() => res()));
  return sink;
}

export interface Hook {
  key: string;
  body: Record<string, unknown>;
  raw: string;
  signatureOk: boolean;
  timestampOk: boolean;
}

export interface WebhookSink {
  url: string;
  /** Accepted deliveries (2xx answered). */
  hooks: Hook[];
  /** Every request, also those answered with an error. */
  requests: number;
  /** While set, answer with this status instead of 204. */
  answer: number | null;
  close(): Promise<void>;
}

/** How a receiver checks a webhook: HMAC-SHA256 of "<timestamp>.<raw body>" with the shared secret, and a fresh timestamp. */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  raw: string,
  nowMs = Date.now(),
): { signatureOk: boolean; timestampOk: boolean } {
  const ts = String(headers['x-rc-timestamp'] ?? '');
  const sig = String(headers['x-rc-signature'] ?? '');
  const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex')}`);
  const got = Buffer.from(sig);
  return {
    signatureOk: got.length === want.length && timingSafeEqual(got, want),
    timestampOk: /^\d+$/.test(ts) && Math.abs(nowMs / 1000 - Number(ts)) <= 300,
  };
}

export async function startWebhookSink(secret: string): Promise<WebhookSink> {
  const sink: WebhookSink = { url: '', hooks: [], requests: 0, answer: null, close: async () => undefined };
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      sink.requests++;
      if (sink.answer !== null) {
        res.writeHead(sink.answer).end();
        return;
      }
      const raw = Buffer.concat(parts).toString('utf8');
      const v = verifyWebhook(secret, req.headers, raw);
      if (!v.signatureOk || !v.timestampOk) {
        res.writeHead(401).end();
        return;
      }
      sink.hooks.push({ key: String(req.headers['idempotency-key'] ?? ''), body: JSON.parse(raw) as Record<string, unknown>, raw, ...v });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as AddressInfo).port;
  sink.url = `http://127.0.0.1:${port}/hook`;
  sink.close = () =>
    new Promise<void>((res) => {
      server.closeAllConnections();
      server.close(() => res());
    });
  return sink;
}
