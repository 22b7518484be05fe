import { isIP } from 'node:net';
import { z } from 'zod';
import { HhMm } from '../../protocol/rules-schema.js';
import type { Db } from '../registry.js';

/**
 * The guardians import (rc-sync-server import guardians FILE, POST /v1/import/guardians):
 *   person_id,guardian_id,child_name,channel,address,consent,events[,secret][,quiet_hours]
 *  - channel: email | webhook; address: an e-mail address, or the webhook's https URL (http only on loopback, for tests);
 *  - consent: yes | no (also 1/0, true/false, да/нет); a guardian without consent is kept and gets nothing;
 *  - events: entry, exit, meal, absent separated by ';' '|' or spaces (empty: all four);
 *  - secret: the webhook's HMAC secret (16-256 characters; webhook rows only);
 *  - quiet_hours: HH:MM-HH:MM local time (may wrap midnight), empty: the server's.
 * A child can have several guardians; an import replaces the guardians of each child it names.
 */
export const NOTIFY_EVENTS = ['entry', 'exit', 'meal', 'absent'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
export const CHANNELS = ['email', 'webhook'] as const;
export type Channel = (typeof CHANNELS)[number];

const id = (what: string) => z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, `${what}: 1-64 of A-Z a-z 0-9 _ . -`);
const Email = z.email('address: not a valid e-mail address').max(254);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A webhook endpoint: https anywhere, http only on loopback (tests and a local gateway). */
export function webhookUrlOk(s: string): boolean {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return false;
  }
  if (u.username || u.password) return false;
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && (LOOPBACK.has(u.hostname) || (isIP(u.hostname) === 4 && u.hostname.startsWith('127.')));
}

const Consent = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.enum(['yes', 'no', '1', '0', 'true', 'false', 'да', 'нет'], { message: 'consent: yes or no' }))
  .transform((s) => s === 'yes' || s === '1' || s === 'true' || s === 'да');

const Events = z
  .string()
  .default('')
  .transform((s) => s.split(/[;|\s]+/).filter((x) => x !== ''))
  .pipe(z.array(z.enum(NOTIFY_EVENTS, { message: `events: a subset of ${NOTIFY_EVENTS.join(', ')}` })))
  .transform((a) => (a.length === 0 ? [...NOTIFY_EVENTS] : [...new Set(a)]));

const QuietHours = z
  .string()
  .default('')
  .transform((s, ctx) => {
    if (s === '') return null;
    const m = /^(.+)-(.+)$/.exec(s);
    const from = HhMm.safeParse(m?.[1]);
    const to = HhMm.safeParse(m?.[2]);
    if (!m || !from.success || !to.success || from.data === to.data) {
      ctx.addIssue({ code: 'custom', message: 'quiet_hours: HH:MM-HH:MM (two different times) or empty' });
      return z.NEVER;
    }
    return { from: from.data, to: to.data };
  });

/** One guardian row as the import validates it. */
export const GuardianRow = z
  .object({
    person_id: id('person id'),
    guardian_id: id('guardian id'),
    child_name: z
      .string()
      .min(1, 'child_name is empty')
      .max(100)
      .refine((s) => !/\p{Cc}/u.test(s), 'child_name: no control characters'),
    channel: z.enum(CHANNELS, { message: 'channel: email or webhook' }),
    address: z.string().min(1, 'address is empty').max(2000),
    consent: Consent,
    events: Events,
    secret: z
      .string()
      .optional()
      .transform((s) => (s === '' ? undefined : s)),
    quiet_hours: QuietHours,
  })
  .superRefine((r, ctx) => {
    if (r.channel === 'email' && !Email.safeParse(r.address).success)
      ctx.addIssue({ code: 'custom', path: ['address'], message: 'address: not a valid e-mail address' });
    if (r.channel === 'webhook') {
      if (!webhookUrlOk(r.address))
        ctx.addIssue({ code: 'custom', path: ['address'], message: 'address: a webhook must be an https URL (http only on loopback)' });
      if (r.secret === undefined || r.secret.length < 16 || r.secret.length > 256)
        ctx.addIssue({ code: 'custom', path: ['secret'], message: 'secret: a webhook needs a secret of 16-256 characters' });
    } else if (r.secret !== undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'secret: only webhook rows carry a secret' });
  });
export type GuardianRow = z.output<typeof GuardianRow>;

export const GUARDIAN_COLUMNS = ['person_id', 'guardian_id', 'child_name', 'channel', 'address', 'consent', 'events'];

/** Write guardian rows; a row marked `first` (the first of its child in the import) clears that child's guardians before it. */
export function upsertGuardians(db: Db, rows: readonly { row: GuardianRow; first: boolean }[], now = new Date()): void {
  const del = db.prepare('DELETE FROM guardians WHERE person_id = ?');
  const ins = db.prepare(
    `INSERT INTO guardians(person_id, guardian_id, child_name, channel, address, secret, consent, events, quiet_from, quiet_to, updated_at)
     VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(person_id, guardian_id) DO UPDATE SET child_name=excluded.child_name, channel=excluded.channel,
       address=excluded.address, secret=excluded.secret, consent=excluded.consent, events=excluded.events, quiet_from=excluded.quiet_from,
       quiet_to=excluded.quiet_to, updated_at=excluded.updated_at`,
  );
  const at = now.toISOString();
  for (const { row: r, first } of rows) {
    if (first) del.run(r.person_id);
    ins.run(
      r.person_id,
      r.guardian_id,
      r.child_name,
      r.channel,
      r.address,
      r.secret ?? null,
      r.consent ? 1 : 0,
      r.events.join(','),
      r.quiet_hours?.from ?? null,
      r.quiet_hours?.to ?? null,
      at,
    );
  }
}

/** A guardian as the dispatcher reads it. */
export interface Guardian {
  person: string;
  guardian: string;
  childName: string;
  channel: Channel;
  address: string;
  secret: string | null;
  consent: boolean;
  events: NotifyEvent[];
  quiet: { from: string; to: string } | null;
}

interface GuardianDbRow {
  person_id: string;
  guardian_id: string;
  child_name: string;
  channel: string;
  address: string;
  secret: string | null;
  consent: number;
  events: string;
  quiet_from: string | null;
  quiet_to: string | null;
}

export function toGuardian(r: GuardianDbRow): Guardian {
  return {
    person: r.person_id,
    guardian: r.guardian_id,
    childName: r.child_name,
    channel: r.channel === 'webhook' ? 'webhook' : 'email',
    address: r.address,
    secret: r.secret,
    consent: r.consent === 1,
    events: r.events.split(',').filter((e): e is NotifyEvent => (NOTIFY_EVENTS as readonly string[]).includes(e)),
    quiet: r.quiet_from && r.quiet_to ? { from: r.quiet_from, to: r.quiet_to } : null,
  };
}
