import { existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';

/**
 * The local status socket: a unix socket the running device serves. A client
 * connects, the device writes its status as one JSON line and closes. Nothing
 * is read from the client, so nothing it sends can change the device.
 */

export async function serveStatus(path: string, status: () => RuntimeStatus): Promise<{ close(): Promise<void> }> {
  if (existsSync(path)) {
    if (await answers(path)) {
      throw new RcError(ErrorCode.RuntimeAlreadyRunning, `another device answers on ${path}`, { socket: path });
    }
    try {
      unlinkSync(path); // stale socket of a device that died
    } catch {
      // fall through: listen reports it
    }
  }
  const server: Server = createServer((sock) => {
    sock.on('error', () => undefined);
    let body: string;
    try {
      body = JSON.stringify(status());
    } catch (e) {
      body = JSON.stringify({ error: 'status-failed', message: e instanceof Error ? e.message : String(e) });
    }
    sock.end(`${body}\n`);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', (e) => rej(new RcError(ErrorCode.ConfigInvalid, `cannot serve status on ${path}: ${e.message}`, { path: 'runtime.statusSocket' })));
    server.listen(path, () => res());
  });
  return {
    close: () =>
      new Promise<void>((res) => {
        server.close(() => res());
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }),
  };
}

function answers(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection(path);
    const t = setTimeout(() => {
      s.destroy();
      res(false);
    }, 1000);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      res(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      res(false);
    });
  });
}

const Direction = z.enum(['entry', 'exit']);

/** absent: named in the config but never seen (check the cable / the name). */
const ReaderStatusSchema = z.object({
  name: z.string(),
  direction: Direction.nullable(),
  state: z.enum(['idle', 'reading', 'removed', 'absent']),
  cardPresent: z.boolean(),
  taps: z.number(),
  lastError: z.object({ code: z.string(), at: z.string() }).nullable(),
});
export type ReaderStatus = z.infer<typeof ReaderStatusSchema>;

/** One tap as the runtime reports it (status, demo, logs). Never holds a PAN. */
const TapReportSchema = z.object({
  reader: z.string(),
  direction: Direction.nullable(),
  seq: z.number(),
  /** ISO-8601, the tap's wall time. */
  time: z.string(),
  /** First 8 hex digits of the token. */
  tokenPrefix: z.string().nullable(),
  maskedPan: z.string().nullable(),
  scheme: z.string().nullable(),
  result: z.enum(['allow', 'deny']),
  reason: z.string(),
  fareKopecks: z.number(),
  benefit: z.string().nullable(),
  display: z.object({ ru: z.string(), en: z.string() }),
  /** Set when the card could not be read (the reason is then this code). */
  error: z.string().nullable(),
  /** Card present → card read (token derived), ms. */
  readMs: z.number(),
  /** Card present → journal committed, ms. */
  commitMs: z.number(),
  /** Card present → every peripheral command sent, ms. */
  signalMs: z.number(),
  /** Gate commands sent for this tap. */
  gate: z.enum(['open-entry', 'open-exit']).nullable(),
});
export type TapReport = z.infer<typeof TapReportSchema>;

const PeripheralStatusSchema = z.object({
  name: z.string(),
  kind: z.string(),
  protocol: z.string(),
  port: z.string(),
  reader: z.string().nullable(),
  state: z.string().optional(),
  health: z.object({
    status: z.enum(['ok', 'degraded', 'down']),
    since: z.string(),
    portOpen: z.boolean(),
    lastError: z.object({ code: z.string(), message: z.string(), at: z.string() }).optional(),
    counters: z.record(z.string(), z.number()),
  }),
});

/** The one status shape: what the runtime builds, the socket serves and `rc-device status` accepts (zod at the boundary). */
export const StatusSchema = z.object({
  device: z.object({
    id: z.string(),
    kind: z.string(),
    route: z.string().optional(),
    vehicle: z.string().optional(),
    schoolId: z.string().optional(),
    partnerId: z.string().optional(),
  }),
  pid: z.number(),
  startedAt: z.string(),
  uptimeSec: z.number(),
  state: z.enum(['running', 'stopping']),
  pcsc: z.enum(['up', 'down', 'unknown']),
  readers: z.array(ReaderStatusSchema),
  peripherals: z.array(PeripheralStatusSchema),
  lastTap: TapReportSchema.nullable(),
  taps: z.number(),
  lists: z.array(z.object({ scope: z.string(), version: z.number(), appliedAt: z.string().nullable(), ageSec: z.number().nullable() })),
  journal: z.object({ lastSeq: z.number(), ackedSeq: z.number(), backlog: z.number() }),
  sync: z.object({ configured: z.boolean(), connected: z.boolean(), since: z.string().nullable(), lastAppliedAt: z.string().nullable(), refused: z.number() }),
});
export type RuntimeStatus = z.infer<typeof StatusSchema>;
/** What `queryStatus` returns: the same shape. */
export type StatusReply = RuntimeStatus;

/** Ask a running device for its status; RcError runtime.not-running when nothing answers. */
export function queryStatus(path: string, timeoutMs = 3000): Promise<StatusReply> {
  return new Promise((resolve, reject) => {
    const notRunning = (why: string) => reject(new RcError(ErrorCode.RuntimeNotRunning, `no device answers on ${path}: ${why}`, { socket: path }));
    const s = createConnection(path);
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      notRunning('timeout');
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.length > 1 << 20) s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      notRunning(e.code ?? e.message);
    });
    s.on('end', () => {
      clearTimeout(t);
      let raw: unknown;
      try {
        raw = JSON.parse(buf);
      } catch {
        return notRunning('the answer is not JSON');
      }
      const r = StatusSchema.safeParse(raw);
      if (!r.success) return notRunning(`unexpected answer (${r.error.issues[0]?.path.join('.') ?? ''})`);
      resolve(r.data);
    });
  });
}

function age(sec: number | null): string {
  if (sec === null) return '?';
  if (sec < 120) return `${sec} s`;
  if (sec < 7200) return `${Math.round(sec / 60)} min`;
  if (sec < 172800) return `${Math.round(sec / 3600)} h`;
  return `${Math.round(sec / 86400)} d`;
}

/** The human-readable status a technician reads. */
export function formatStatus(s: StatusReply): string {
  const L: string[] = [];
  const d = s.device;
  const where = [
    d.route !== undefined ? `route ${d.route}` : '',
    d.vehicle !== undefined ? `vehicle ${d.vehicle}` : '',
    d.schoolId !== undefined ? `school ${d.schoolId}` : '',
    d.partnerId !== undefined ? `partner ${d.partnerId}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  L.push(`device   ${s.device.id} (${s.device.kind}${where ? `, ${where}` : ''}) — ${s.state}, pid ${s.pid}, up ${age(s.uptimeSec)}, ${s.taps} taps`);
  L.push(`readers  PC/SC service: ${s.pcsc}`);
  if (s.readers.length === 0) L.push('         (no reader)');
  for (const r of s.readers) {
    L.push(
      `         ${r.name}${r.direction ? ` [${r.direction}]` : ''}: ${r.state}${r.cardPresent ? ', card present' : ''}, ${r.taps} taps${r.lastError ? `, last error ${r.lastError.code} at ${r.lastError.at}` : ''}`,
    );
  }
  L.push('periph.');
  if (s.peripherals.length === 0) L.push('         (none)');
  for (const p of s.peripherals) {
    const h = p.health;
    L.push(
      `         ${p.name} (${p.kind}, ${p.protocol} on ${p.port}): ${h.status}${p.state ? `, gate ${p.state}` : ''}${h.portOpen ? '' : ', port closed'}${h.lastError ? `, last error ${h.lastError.code}: ${h.lastError.message}` : ''}`,
    );
  }
  const t = s.lastTap;
  L.push(
    t
      ? `last tap ${t.time} on ${t.reader}: ${t.result} (${t.reason})${t.fareKopecks ? `, ${(t.fareKopecks / 100).toFixed(2)} RUB` : ''}${t.benefit ? `, benefit ${t.benefit}` : ''}, card ${t.maskedPan ?? '-'} token ${t.tokenPrefix ?? '-'}…`
      : 'last tap (none yet)',
  );
  L.push(`lists    ${s.lists.length === 0 ? '(none)' : s.lists.map((l) => `${l.scope} v${l.version} (${age(l.ageSec)} old)`).join(', ')}`);
  L.push(`journal  last seq ${s.journal.lastSeq}, acknowledged ${s.journal.ackedSeq}, backlog ${s.journal.backlog}`);
  L.push(
    `sync     ${s.sync.configured ? (s.sync.connected ? 'broker connected' : 'broker NOT connected') : 'not configured'}${s.sync.since ? ` since ${s.sync.since}` : ''}${s.sync.refused ? `, ${s.sync.refused} messages refused` : ''}`,
  );
  return L.join('\n');
}
