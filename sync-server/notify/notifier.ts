import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import { HhMm, isTimeZone } from '../../protocol/rules-schema.js';
import { localTime } from '../../protocol/rules/index.js';
import { publishedSchoolRules, weekdayOf } from '../reports/attendance.js';
import type { Db } from '../registry.js';
import { toGuardian, type Channel, type NotifyEvent } from './guardians.js';
import { Facts, onOutboxWritten, queueAbsent } from './outbox.js';
import { messageText } from './text.js';
import { SendError, SmtpTransport, WebhookTransport, type Transport } from './transports.js';

const QuietHours = z.object({ from: HhMm, to: HhMm }).strict();

/** The server's notification settings (rc-sync-server start --smtp-url … --quiet-hours … --absent-by …). */
export const NotifyConfig = z
  .object({
    /** smtp://user:pass@host:port (or smtps://); without it e-mails wait in the outbox (notify.not-configured). */
    smtpUrl: z
      .string()
      .regex(/^smtps?:\/\//, 'smtp URL: smtp://host:port or smtps://host:port')
      .optional(),
    from: z.string().min(3).default('Карта жителя <noreply@resident-card.local>'),
    /** Local time zone of messages, quiet hours and school days. */
    timeZone: z.string().refine(isTimeZone, 'unknown time zone').default('Europe/Moscow'),
    /** Server-wide quiet hours (a guardian's own override them); entry, exit and meal messages wait until they end. */
    quietHours: QuietHours.nullable().default(null),
    /** "Not arrived by HH:MM" on school days (null: off). */
    absentBy: HhMm.nullable().default('09:00'),
    /** How often the outbox and the absence check run (a new message wakes it at once). */
    intervalMs: z.number().int().min(10).max(600_000).default(1000),
    /** Retries: base * 2^(attempts-1), at most cap. */
    backoffBaseMs: z.number().int().min(1).default(5_000),
    backoffCapMs: z.number().int().min(1).default(3_600_000),
    webhookTimeoutMs: z.number().int().min(100).default(10_000),
    /** An entry, exit or meal that reaches the server this long after it happened (a device long offline) is not told. */
    maxLateMs: z
      .number()
      .int()
      .min(0)
      .default(6 * 3_600_000),
  })
  .strict();
export type NotifyConfig = z.output<typeof NotifyConfig>;
export type NotifyOptions = z.input<typeof NotifyConfig>;

export function notifyConfig(o: NotifyOptions = {}): NotifyConfig {
  const p = NotifyConfig.safeParse(o);
  if (!p.success) {
    const i = p.error.issues[0]!;
    throw new RcError(ErrorCode.ConfigInvalid, `notifications: ${i.path.join('.')}: ${i.message}`, { field: i.path.join('.') });
  }
  return p.data;
}

export interface OutboxRow {
  key: string;
  guardian: string;
  person: string;
  event: string;
  state: string;
  attempts: number;
  nextAttempt: string | null;
  lastError: string | null;
  created: string;
  sent: string | null;
}
export interface NotifyStatus {
  counts: { pending: number; sent: number; failed: number; cancelled: number };
  messages: OutboxRow[];
}

interface DbOutbox {
  key: string;
  guardian_id: string;
  person_id: string;
  event: string;
  facts: string;
  state: string;
  attempts: number;
  next_ms: number;
  last_error: string | null;
  created_ms: number;
  sent_ms: number | null;
}

const BATCH = 50;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const minutes = (hm: string) => Number(hm.slice(0, 2)) * 60 + Number(hm.slice(3, 5));

/** Whether `hm` lies in [from, to) (wrapping midnight when from > to); if so, the ms until `to`. */
export function quietUntil(nowMs: number, hm: string, q: { from: string; to: string } | null): number | null {
  if (!q) return null;
  const n = minutes(hm);
  const f = minutes(q.from);
  const t = minutes(q.to) % 1440;
  const inside = f < t ? n >= f && n < t : n >= f || n < t;
  if (!inside) return null;
  const wait = (t - n + 1440) % 1440 || 1440;
  return nowMs - (nowMs % 60_000) + wait * 60_000;
}

/**
 * Sends what the outbox holds, at least once: a row is `sent` only after the transport's accept (SMTP 250, webhook 2xx);
 * a crash in between sends it again after the restart with the same key (Message-ID / Idempotency-Key), so the
 * receiver sees one message. Failures stay `pending` with the error and retry with capped exponential backoff;
 * a permanent refusal (SMTP 5xx, webhook 4xx) is `failed`. An entry that reached the server more than `maxLateMs` after it
 * happened (a turnstile offline for the day) is `cancelled`: yesterday's entry is no news. Quiet hours defer entry, exit and meal messages to
 * the quiet period's end (absence messages are urgent). A guardian removed or without consent by then: `cancelled`.
 *
 * The same tick runs the "not arrived by HH:MM" check on the injected clock: on a school day of the rules published
 * for the student's school (a weekday with a student window, not a holiday; a school's own `rules-school-<id>`
 * overrides the general documents), once the time has come, each enrolled student with a
 * consenting guardian and no allowed turnstile entry that local day gets one message per guardian; each student
 * is checked once per day (notify_absent), so a restart does not repeat it.
 */
export class Notifier {
  readonly cfg: NotifyConfig;
  private readonly transports: Partial<Record<Channel, Transport>>;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    cfg: NotifyOptions = {},
    opts: { clock?: () => number; transports?: Partial<Record<Channel, Transport>> } = {},
  ) {
    this.cfg = notifyConfig(cfg);
    this.now = opts.clock ?? Date.now;
    this.transports = opts.transports ?? {
      ...(this.cfg.smtpUrl ? { email: new SmtpTransport(this.cfg.smtpUrl, this.cfg.from) } : {}),
      webhook: new WebhookTransport(this.cfg.webhookTimeoutMs),
    };
  }

  start(): void {
    // e-mails that waited for an SMTP server (notify.not-configured): due now that there is one
    if (this.transports.email)
      this.db.prepare("UPDATE notify_outbox SET next_ms = 0 WHERE state = 'pending' AND last_error LIKE ?").run(`${ErrorCode.NotifyNotConfigured}:%`);
    onOutboxWritten(this.db, { wake: () => this.kick(), clock: this.now });
    this.timer = setInterval(() => this.kick(), this.cfg.intervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Run a tick now (or right after the one running). */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.tick()
      .catch((e: unknown) => this.log.warn({ err: String(e) }, 'notification tick failed'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Run one pass now, after any pass already running (tests drive the injected clock with it). */
  async runOnce(): Promise<void> {
    while (this.running) await this.running;
    this.kick();
    await this.running;
  }

  /** One pass: the absence check, then every due message. */
  private async tick(): Promise<void> {
    this.checkAbsent(this.now());
    for (;;) {
      const now = this.now();
      const due = this.db
        .prepare("SELECT * FROM notify_outbox WHERE state = 'pending' AND next_ms <= ? ORDER BY next_ms LIMIT ?")
        .all(now, BATCH) as DbOutbox[];
      if (due.length === 0) return;
      await Promise.all(due.map((r) => this.deliver(r, now)));
      if (due.length < BATCH || this.closed) return;
    }
  }

  private async deliver(r: DbOutbox, now: number): Promise<void> {
    const set = (state: string, fields: { next?: number; err?: string | null; attempts?: number; sent?: number }) =>
      this.db
        .prepare('UPDATE notify_outbox SET state = ?, next_ms = ?, last_error = ?, attempts = ?, sent_ms = ? WHERE key = ?')
        .run(state, fields.next ?? r.next_ms, fields.err === undefined ? r.last_error : fields.err, fields.attempts ?? r.attempts, fields.sent ?? null, r.key);
    const row = this.db.prepare('SELECT * FROM guardians WHERE person_id = ? AND guardian_id = ?').get(r.person_id, r.guardian_id);
    const g = row ? toGuardian(row as Parameters<typeof toGuardian>[0]) : null;
    const event = r.event as NotifyEvent;
    if (!g || !g.consent || !g.events.includes(event)) {
      set('cancelled', { err: g ? 'the guardian withdrew consent or this event' : 'the guardian is no longer registered' });
      return;
    }
    const facts = Facts.parse(JSON.parse(r.facts));
    if (event !== 'absent' && r.created_ms - facts.ms > this.cfg.maxLateMs) {
      set('cancelled', { err: `reached the server ${Math.round((r.created_ms - facts.ms) / 60_000)} min after it happened: not told` });
      return;
    }
    if (event !== 'absent') {
      const until = quietUntil(now, localTime(now, this.cfg.timeZone).hm, g.quiet ?? this.cfg.quietHours);
      if (until !== null) {
        set('pending', { next: until });
        return;
      }
    }
    const t = this.transports[g.channel];
    if (!t) {
      set('pending', { next: now + this.cfg.backoffCapMs, err: `${ErrorCode.NotifyNotConfigured}: no ${g.channel} transport (start with --smtp-url)` });
      return;
    }
    const m = messageText(event, facts, this.cfg.timeZone);
    const fields = {
      child: facts.child,
      school: facts.school,
      time: new Date(facts.ms).toISOString(),
      localTime: m.localTime,
      ...(facts.direction ? { direction: facts.direction } : {}),
      ...(facts.meal ? { meal: facts.meal } : {}),
    };
    try {
      await t.send({ key: r.key, event, to: g.address, secret: g.secret, subject: m.subject, text: m.text, fields });
      set('sent', { attempts: r.attempts + 1, sent: this.now(), err: null });
      this.log.debug({ key: r.key, event, channel: g.channel }, 'notification delivered');
    } catch (e) {
      const attempts = r.attempts + 1;
      const permanent = e instanceof SendError && e.permanent;
      const err = `${ErrorCode.NotifyTransportFailed}: ${e instanceof Error ? e.message : String(e)}`;
      const next = now + Math.min(this.cfg.backoffCapMs, this.cfg.backoffBaseMs * 2 ** Math.min(30, attempts - 1));
      set(permanent ? 'failed' : 'pending', { attempts, err, next });
      this.log.warn(
        { key: r.key, event, channel: g.channel, attempts, permanent, code: ErrorCode.NotifyTransportFailed, err: err.slice(0, 200) },
        permanent ? 'notification refused by the receiver: not retried' : 'notification not delivered: kept in the outbox, retried later',
      );
    }
  }

  /** "Not arrived by HH:MM": see the class comment. Returns how many messages were queued. */
  checkAbsent(nowMs: number): number {
    const by = this.cfg.absentBy;
    if (by === null) return 0;
    const lt = localTime(nowMs, this.cfg.timeZone);
    if (lt.hm < by) return 0;
    const candidates = this.db
      .prepare(
        `SELECT e.person_id AS person, min(e.school_id) AS school, c.token FROM enrolments e JOIN cards c ON c.person_id = e.person_id
         WHERE e.role = 'student' AND e.valid_from <= ? AND e.valid_to >= ?
           AND EXISTS (SELECT 1 FROM guardians g WHERE g.person_id = e.person_id AND g.consent = 1)
           AND NOT EXISTS (SELECT 1 FROM notify_absent a WHERE a.person_id = e.person_id AND a.day = ?)
         GROUP BY e.person_id, c.token`,
      )
      .all(lt.date, lt.date, lt.date) as { person: string; school: string; token: string }[];
    const schoolDay = new Map<string, boolean>(); // per school, read once a pass
    const isSchoolDay = (school: string): boolean => {
      let v = schoolDay.get(school);
      if (v === undefined) schoolDay.set(school, (v = this.isSchoolDay(school, lt.date)));
      return v;
    };
    const due = candidates.filter((c) => isSchoolDay(c.school));
    if (due.length === 0) return 0;
    const entries = this.db.prepare(
      `SELECT eff_ms FROM journal WHERE token = ? AND eff_ms >= ? AND eff_ms <= ? AND kind = 'turnstile' AND result = 'allow' AND coalesce(direction, 'entry') = 'entry'`,
    );
    const guardians = this.db.prepare('SELECT guardian_id AS guardian, child_name AS child, events FROM guardians WHERE person_id = ? AND consent = 1');
    const mark = this.db.prepare('INSERT INTO notify_absent(person_id, day, checked_ms) VALUES (?,?,?) ON CONFLICT DO NOTHING');
    let queued = 0;
    this.db.transaction(() => {
      for (const c of due) {
        if (mark.run(c.person, lt.date, nowMs).changes === 0) continue;
        const arrived = (entries.pluck().all(c.token, nowMs - 36 * 3_600_000, nowMs) as number[]).some(
          (ms) => localTime(ms, this.cfg.timeZone).date === lt.date,
        );
        if (arrived) continue;
        for (const g of guardians.all(c.person) as { guardian: string; child: string; events: string }[]) {
          if (g.events.split(',').includes('absent')) queued += queueAbsent(this.db, { person: c.person, ...g }, c.school, lt.date, by, nowMs);
        }
      }
    })();
    if (queued > 0) this.log.info({ day: lt.date, queued }, 'absence messages queued');
    return queued;
  }

  /**
   * A school day at this school: the school's rules as its turnstiles read them (`rules`, `rules-turnstile`,
   * `rules-school-<id>`, sync-server/published-rules.ts) have a student window on that weekday and no holiday.
   */
  private isSchoolDay(school: string, date: string): boolean {
    const rules = publishedSchoolRules(this.db, school).school;
    if (!rules || rules.holidays.includes(date)) return false;
    const wd = weekdayOf(date);
    return (rules.schedules.student ?? []).some((w) => w.days.includes(wd));
  }

  /** Messages by state. */
  counts(): NotifyStatus['counts'] {
    const counts = { pending: 0, sent: 0, failed: 0, cancelled: 0 };
    for (const r of this.db.prepare('SELECT state, count(*) AS n FROM notify_outbox GROUP BY state').all() as { state: string; n: number }[])
      if (r.state in counts) counts[r.state as keyof typeof counts] = r.n;
    return counts;
  }

  status(limit = 1000): NotifyStatus {
    const counts = this.counts();
    const rows = this.db
      .prepare("SELECT * FROM notify_outbox WHERE state IN ('pending', 'failed') ORDER BY created_ms, key LIMIT ?")
      .all(Math.max(1, Math.min(10_000, limit))) as DbOutbox[];
    return {
      counts,
      messages: rows.map((r) => ({
        key: r.key,
        guardian: r.guardian_id,
        person: r.person_id,
        event: r.event,
        state: r.state,
        attempts: r.attempts,
        nextAttempt: r.state === 'pending' ? iso(r.next_ms) : null,
        lastError: r.last_error,
        created: iso(r.created_ms) ?? '',
        sent: iso(r.sent_ms),
      })),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    onOutboxWritten(this.db, null);
    await this.running;
    for (const t of Object.values(this.transports)) t.close();
  }
}
