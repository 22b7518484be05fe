import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { applyImport, parseImport } from '../../sync-server/import.js';
import { Notifier, quietUntil } from '../../sync-server/notify/notifier.js';
import { messageText } from '../../sync-server/notify/text.js';
import { SendError, webhookSignature, type OutMessage, type Transport } from '../../sync-server/notify/transports.js';
import { quietLogger } from '../support/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { expectRcError } from '../support/errors.js';
import { verifyWebhook } from '../support/notify.js';
import { schoolRegistry, uploadSchool, type SchoolRegistry } from '../support/school-journal.js';

/**
 * Guardians and the outbox over a real registry: guardians imported through the real import, entries through the
 * real journal ingest (test/support/school-journal.ts); what the outbox holds afterwards.
 */
async function* one(text: string) {
  yield text;
}
const HEADER = 'person_id,guardian_id,child_name,channel,address,consent,events,secret,quiet_hours';
const parse = (rows: string[], skipInvalid = true) =>
  parseImport('guardians', one([HEADER, ...rows].join('\n') + '\n'), { skipInvalid, tokenKey: DEV_TOKEN_KEY, today: '2026-12-01' });

describe('guardians import', () => {
  it('reads consent, events (all four when empty), quiet hours and the webhook secret', async () => {
    const { rows, report } = await parse([
      'p1,g1,Саша,email,a@example.org,да,,,22:00-07:00',
      'p1,g2,Саша,webhook,https://gw.example.org/h,no,exit|meal,0123456789abcdef,',
    ]);
    expect(report).toMatchObject({ rows: 2, applied: 2, rejected: 0 });
    expect(rows).toMatchObject([
      { kind: 'guardians', row: { consent: true, events: ['entry', 'exit', 'meal', 'absent'], quiet_hours: { from: '22:00', to: '07:00' } } },
      { kind: 'guardians', row: { consent: false, events: ['exit', 'meal'], secret: '0123456789abcdef', quiet_hours: null } },
    ]);
  });

  it('refuses each bad row with its column and reason', async () => {
    const { report } = await parse([
      'p1,g1,Саша,email,a@@example,yes,entry,,',
      'p1,g2,Саша,webhook,https://gw.example.org/h,yes,entry,short,',
      'p1,g3,Саша,webhook,http://10.0.0.5/h,yes,entry,0123456789abcdef,',
      'p1,g4,Саша,email,a@example.org,maybe,entry,,',
      'p1,g5,Саша,email,a@example.org,yes,entry;lunch,,',
      'p1,g6,Саша,email,a@example.org,yes,entry,,25:00-07:00',
      'p1,g7,Саша,email,a@example.org,yes,entry,0123456789abcdef,',
      'p1,g8,,email,a@example.org,yes,entry,,',
    ]);
    expect(report.rejected).toBe(8);
    expect(report.errors.map((e) => `${e.line} ${e.column}: ${e.reason}`)).toEqual([
      '2 address: address: not a valid e-mail address',
      '3 secret: secret: a webhook needs a secret of 16-256 characters',
      '4 address: address: a webhook must be an https URL (http only on loopback)',
      '5 consent: consent: yes or no',
      '6 events: events: a subset of entry, exit, meal, absent',
      '7 quiet_hours: quiet_hours: HH:MM-HH:MM (two different times) or empty',
      '8 secret: secret: only webhook rows carry a secret',
      '9 child_name: child_name is empty',
    ]);
    await expectRcError(parse(['p1,g1,Саша,email,bad,yes,entry,,'], false), ErrorCode.ServerImportInvalid);
  });
});

describe('the outbox is written with the journal', () => {
  let r: SchoolRegistry;
  afterEach(() => r?.close());

  const outbox = () =>
    r.db.prepare('SELECT guardian_id AS g, person_id AS p, event, facts, state FROM notify_outbox ORDER BY guardian_id, event').all() as {
      g: string;
      p: string;
      event: string;
      facts: string;
      state: string;
    }[];

  it('an allowed gate passage and a canteen meal queue one message per consenting guardian who chose the event; refusals and repeats none', async () => {
    r = await schoolRegistry(3, ['p0,S1,student,1,free-breakfast,2026-09-01,2027-05-31', 'p1,S1,student,1,,2026-09-01,2027-05-31']);
    const rows = [
      HEADER,
      'p0,mum,Саша,email,mum@example.org,yes,entry;meal,,',
      'p0,dad,Саша,email,dad@example.org,yes,exit,,',
      'p0,gran,Саша,email,gran@example.org,no,,,',
      'p1,g1,Маша,email,m@example.org,yes,,,',
    ];
    const { rows: parsed } = await parseImport('guardians', one(rows.join('\n') + '\n'), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-12-01' });
    applyImport(r.db, 'guardians', parsed, '2026-12-01');
    const taps = [
      { device: 'gate-1', school: 'S1', kind: 'turnstile' as const, at: '2026-12-01T07:55', card: 0, direction: 'entry' as const },
      { device: 'gate-1', school: 'S1', kind: 'turnstile' as const, at: '2026-12-01T14:05', card: 0, direction: 'exit' as const },
      { device: 'canteen-1', school: 'S1', kind: 'canteen' as const, at: '2026-12-01T09:10', card: 0, meal: 'breakfast' },
      { device: 'gate-1', school: 'S1', kind: 'turnstile' as const, at: '2026-12-01T18:00', card: 1, direction: 'entry' as const, result: 'deny' as const },
    ];
    uploadSchool(r, taps);
    uploadSchool(r, taps); // the same batches again: nothing new is stored, nothing is queued twice
    expect(outbox().map((o) => `${o.g} ${o.event} ${o.state}`)).toEqual(['dad exit pending', 'mum entry pending', 'mum meal pending']);
    const meal = JSON.parse(outbox()[2]!.facts) as Parameters<typeof messageText>[1];
    expect(meal).toMatchObject({ child: 'Саша', school: 'S1', meal: 'breakfast' });
    expect(messageText('meal', meal, 'Europe/Moscow').text).toBe('01.12.2026 в 09:10: Саша — завтрак в столовой школы S1.');
  });
});

describe('the dispatcher', () => {
  let r: SchoolRegistry;
  afterEach(() => r?.close());
  const recorder = (fail: Error | null = null) => {
    const sent: OutMessage[] = [];
    const t: Transport = {
      channel: 'email',
      send: async (m) => {
        if (fail) throw fail;
        sent.push(m);
      },
      close: () => undefined,
    };
    return { t, sent };
  };
  const setup = async (arrival?: Date) => {
    r = await schoolRegistry(1, ['p0,S1,student,1,,2026-09-01,2027-05-31']);
    const { rows } = await parseImport('guardians', one(`${HEADER}\np0,mum,Саша,email,mum@example.org,yes,entry,,\n`), {
      skipInvalid: false,
      tokenKey: DEV_TOKEN_KEY,
      today: '2026-12-01',
    });
    applyImport(r.db, 'guardians', rows, '2026-12-01');
    uploadSchool(r, [{ device: 'gate-1', school: 'S1', kind: 'turnstile', at: '2026-12-01T07:55', card: 0, direction: 'entry' }], arrival);
  };
  const state = () =>
    r.db.prepare('SELECT state, attempts, last_error AS err FROM notify_outbox').get() as { state: string; attempts: number; err: string | null };
  const NOON = Date.parse('2026-12-01T12:00:00+03:00');

  it('without an SMTP server e-mails wait (notify.not-configured) and go at the start that brings one', async () => {
    await setup();
    const none = new Notifier(r.db, quietLogger(), { absentBy: null }, { clock: () => NOON, transports: {} });
    await none.runOnce();
    expect(state()).toMatchObject({ state: 'pending', attempts: 0, err: expect.stringMatching(/^notify\.not-configured: /) });
    expect(none.status().messages).toMatchObject([{ state: 'pending', event: 'entry', guardian: 'mum', person: 'p0' }]);
    await none.close();
    const { t, sent } = recorder();
    const n = new Notifier(r.db, quietLogger(), { absentBy: null }, { clock: () => NOON, transports: { email: t } });
    n.start();
    await n.runOnce();
    await n.close();
    expect(state()).toMatchObject({ state: 'sent', attempts: 1, err: null });
    expect(sent).toMatchObject([{ to: 'mum@example.org', event: 'entry', text: '01.12.2026 в 07:55: Саша — вход в школу S1.' }]);
  });

  it('an entry that reaches the server hours after it happened (a gate offline all day) is not told', async () => {
    await setup(new Date('2026-12-01T20:00:00+03:00'));
    const { t, sent } = recorder();
    const n = new Notifier(r.db, quietLogger(), { absentBy: null }, { clock: () => NOON, transports: { email: t } });
    await n.runOnce();
    await n.close();
    expect(state()).toMatchObject({ state: 'cancelled', err: 'reached the server 725 min after it happened: not told' });
    expect(sent).toEqual([]);
  });

  it('a permanent refusal is failed and not retried; it shows in status with its reason', async () => {
    await setup();
    const { t } = recorder(new SendError('smtp: 550 no such mailbox', true));
    const n = new Notifier(r.db, quietLogger(), { absentBy: null, backoffBaseMs: 1 }, { clock: () => NOON, transports: { email: t } });
    await n.runOnce();
    await n.runOnce();
    expect(state()).toEqual({ state: 'failed', attempts: 1, err: 'notify.transport-failed: smtp: 550 no such mailbox' });
    expect(n.status()).toMatchObject({ counts: { pending: 0, failed: 1, sent: 0 }, messages: [{ state: 'failed', nextAttempt: null }] });
    await n.close();
  });
});

describe('quiet hours and the webhook signature', () => {
  const at = (hm: string) => Date.parse(`2026-12-01T${hm}:00Z`);
  it('a quiet period wrapping midnight defers to its end; outside it nothing waits', () => {
    const q = { from: '22:00', to: '07:00' };
    expect(quietUntil(at('23:30'), '23:30', q)).toBe(at('23:30') + 7.5 * 3_600_000);
    expect(quietUntil(at('06:59'), '06:59', q)).toBe(at('07:00'));
    expect(quietUntil(at('07:00'), '07:00', q)).toBeNull();
    expect(quietUntil(at('12:00'), '12:00', { from: '12:00', to: '13:00' })).toBe(at('13:00'));
    expect(quietUntil(at('12:00'), '12:00', null)).toBeNull();
  });

  it('a receiver verifies sha256=HMAC(secret, "<timestamp>.<body>"); another body or secret does not verify', () => {
    const body = '{"key":"k","event":"entry"}';
    const ts = String(Math.floor(Date.now() / 1000));
    const headers = { 'x-rc-timestamp': ts, 'x-rc-signature': webhookSignature('s3cret-s3cret-s3cret', ts, body) };
    expect(verifyWebhook('s3cret-s3cret-s3cret', headers, body)).toEqual({ signatureOk: true, timestampOk: true });
    expect(verifyWebhook('s3cret-s3cret-s3cret', headers, body.replace('entry', 'exit')).signatureOk).toBe(false);
    expect(verifyWebhook('another-secret-0000', headers, body).signatureOk).toBe(false);
    expect(verifyWebhook('s3cret-s3cret-s3cret', headers, body, Date.now() + 600_000).timestampOk).toBe(false);
  });
});

describe('"not arrived by" reads each school\'s own rules', () => {
  let r: SchoolRegistry;
  afterEach(() => r?.close());

  it("a school's rules-school-<id> changes what is notified: its own holiday silences it, its own Saturday classes are checked", async () => {
    // p0 at S1 (the general rules: Monday to Friday), p1 at S2 (its own document: 1 December a holiday), p2 at S3 (its own: Saturdays only)
    r = await schoolRegistry(3, ['p0,S1,student,5,,2026-09-01,2027-05-31', 'p1,S2,student,5,,2026-09-01,2027-05-31', 'p2,S3,student,5,,2026-09-01,2027-05-31']);
    const guardians = [
      'p0,g0,Саша,email,g0@example.org,yes,absent,,',
      'p1,g1,Маша,email,g1@example.org,yes,absent,,',
      'p2,g2,Коля,email,g2@example.org,yes,absent,,',
    ];
    const { rows } = await parse(guardians, false);
    applyImport(r.db, 'guardians', rows, '2026-12-01');
    const student = (days: string[]) => [{ days, from: '08:00', to: '14:00' }];
    r.pub.setConfig('rules-school-S2', {
      schema: 1,
      school: { schedules: { student: student(['mon', 'tue', 'wed', 'thu', 'fri']) }, holidays: ['2026-12-01'] },
    });
    r.pub.setConfig('rules-school-S3', { schema: 1, school: { schedules: { student: student(['sat']) }, holidays: [] } });
    const absentFor = () =>
      (r.db.prepare("SELECT guardian_id FROM notify_outbox WHERE event = 'absent' ORDER BY guardian_id").pluck().all() as string[]).join(' ');
    const n = new Notifier(r.db, quietLogger(), { absentBy: '09:00' }, { transports: {} });

    expect(n.checkAbsent(Date.parse('2026-12-01T10:00:00+03:00'))).toBe(1); // a Tuesday: S1 has classes; S2's holiday, S3's day off
    expect(absentFor()).toBe('g0');
    expect(n.checkAbsent(Date.parse('2026-12-05T10:00:00+03:00'))).toBe(1); // a Saturday: only S3's own rules have classes
    expect(absentFor()).toBe('g0 g2');
    // the documents change: S2 drops its holiday; the next Tuesday all three rules say whether to tell, and S2 now does
    r.pub.setConfig('rules-school-S2', { schema: 1, school: { schedules: { student: student(['tue']) }, holidays: [] } });
    expect(n.checkAbsent(Date.parse('2026-12-08T10:00:00+03:00'))).toBe(2);
    expect(absentFor()).toBe('g0 g0 g1 g2');
    await n.close();
  });
});
