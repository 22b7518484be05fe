/**
 * Guardians' notifications on the real stack (issue 14 item 2): a real turnstile device (store + sync client)
 * taps, its journal travels over MQTT to the server, the server queues messages in its outbox in the journal's
 * transaction and delivers them to a real SMTP server and a real HTTP receiver started here. The server's clock
 * for notifications is injected (a fixed school morning that runs at real speed).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../device/config/index.js';
import type { Config } from '../../device/config/schema.js';
import { processTap } from '../../device/runtime/process-tap.js';
import { NotificationsAnswer } from '../../protocol/api.js';
import { expectRcError } from '../support/errors.js';
import { startSmtpSink, startWebhookSink, type SmtpSink, type WebhookSink } from '../support/notify.js';
import { operatorFetch } from '../support/operator-api.js';
import { syntheticPan } from '../support/pans.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { importText, openDevice, startStack, type Device, type Stack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

const SECRET = 'webhook-secret-of-the-gateway-0123';
const SCHOOL_RULES = {
  schema: 1,
  school: {
    schedules: { student: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '07:30', to: '15:00' }] },
    holidays: ['2026-12-31'],
  },
};

// the clock of notifications: a Wednesday morning in Moscow, running at real speed from where a test sets it
let offset = 0;
const clock = () => Date.now() + offset;
const setClock = (local: string) => void (offset = Date.parse(`2026-12-02T${local}+03:00`) - Date.now());

describe('guardians are told of entry, exit and absence (real SMTP server, real webhook receiver)', () => {
  let stack: Stack;
  let smtp: SmtpSink;
  let hook: WebhookSink;
  let dev: Device;
  let cfg: Config;
  let mono = 1_000_000;

  const tapAs = (card: number, direction: 'entry' | 'exit') => {
    mono += 60_000;
    const r = processTap(dev.store, { wallTime: clock(), monotonicMs: mono, bootId: 'notify', direction, card: { token: tokenOf(card), expiry: null } }, cfg);
    dev.client.notify();
    return r.decision;
  };
  const outbox = async () =>
    NotificationsAnswer.parse(await (await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, '/v1/notifications')).json());
  const row = (person: string, event: string) =>
    stack.server.db
      .prepare('SELECT key, state, attempts, next_ms AS next, last_error AS err FROM notify_outbox WHERE person_id = ? AND event = ?')
      .get(person, event) as { key: string; state: string; attempts: number; next: number; err: string | null } | undefined;
  const mailsTo = (to: string) => smtp.mails.filter((m) => m.to === to);

  beforeAll(async () => {
    setClock('07:40');
    smtp = await startSmtpSink();
    hook = await startWebhookSink(SECRET);
    stack = await startStack('embedded', {
      notify: { smtpUrl: smtp.url, clock, intervalMs: 50, backoffBaseMs: 100, backoffCapMs: 400, absentBy: '09:00' },
    });
    await importText(stack, 'cards', cardsCsv(1, 6));
    await importText(
      stack,
      'enrolments',
      ['person_id,school_id,role,grade,meal_category,valid_from,valid_to', ...[1, 2, 3, 4, 5, 6].map((i) => `p${i},7,student,3,,2026-09-01,2027-05-31`)].join(
        '\n',
      ) + '\n',
    );
    await stack.server.api.setConfig('rules', SCHOOL_RULES);
    const r = await importText(
      stack,
      'guardians',
      [
        'person_id,guardian_id,child_name,channel,address,consent,events,secret,quiet_hours',
        'p1,g-mum,Саша,email,mum@example.org,yes,entry;exit;absent,,',
        `p1,g-dad,Сашенька,webhook,${hook.url},yes,entry;exit,${SECRET},`,
        'p1,g-gran,Саша,email,gran@example.org,no,entry;exit;absent,,',
        'p2,g2,Маша,email,m2@example.org,yes,entry,,',
        'p3,g3,Петя,email,p3@example.org,yes,entry,,07:00-08:00',
        'p4,g4,Коля,email,k4@example.org,yes,absent,,',
        'p5,g5,Оля,email,o5@example.org,yes,entry,,',
      ].join('\n') + '\n',
    );
    expect(r.report).toMatchObject({ kind: 'guardians', rows: 7, applied: 7, rejected: 0 });
    cfg = loadConfigFile(join(import.meta.dirname, '..', 'fixtures', 'decide', 'turnstile.config.json'));
    dev = openDevice(stack, cfg.device.id, ['school:7', 'stoplist']);
    const want = stack.server.publisher.version('school:7');
    await waitFor(() => dev.store.listVersion('school:7') === want, { timeoutMs: 15_000, what: 'school list on the turnstile' });
  }, 60_000);

  afterAll(async () => {
    await dev?.close();
    await stack?.close();
    await smtp?.close();
    await hook?.close();
  });

  it("quiet hours: an entry at 07:50 inside the guardian's 07:00-08:00 waits until 08:00, then is sent", async () => {
    setClock('07:50');
    expect(tapAs(3, 'entry')).toMatchObject({ result: 'allow' });
    const r = await waitFor(() => row('p3', 'entry'), { timeoutMs: 10_000, what: 'the entry message in the outbox' });
    await stack.server.notifier.runOnce();
    expect(row('p3', 'entry')).toMatchObject({ state: 'pending', attempts: 0, next: Date.parse('2026-12-02T08:00:00+03:00') });
    expect(mailsTo('p3@example.org')).toHaveLength(0);
    setClock('08:00:05');
    await waitFor(() => mailsTo('p3@example.org').length === 1, { timeoutMs: 10_000, what: 'the deferred mail after the quiet hours' });
    expect(mailsTo('p3@example.org')[0]).toMatchObject({ key: r.key, subject: 'Петя: вход в школу' });
    expect(mailsTo('p3@example.org')[0]!.text).toContain('07:50');
  });

  it('a guardian receives entry and exit e-mails, another a signed webhook; one who did not consent gets nothing', async () => {
    setClock('08:01');
    expect(tapAs(1, 'entry')).toMatchObject({ result: 'allow' });
    setClock('08:03');
    expect(tapAs(1, 'exit')).toMatchObject({ result: 'allow' });
    await waitFor(() => mailsTo('mum@example.org').length === 2 && hook.hooks.length === 2, {
      timeoutMs: 15_000,
      what: () => `2 mails and 2 webhooks (mails ${mailsTo('mum@example.org').length}, hooks ${hook.hooks.length})`,
    });
    const [entry, exit] = [...mailsTo('mum@example.org')].sort((a, b) => a.text.localeCompare(b.text));
    expect(entry).toMatchObject({ event: 'entry', subject: 'Саша: вход в школу', text: '02.12.2026 в 08:01: Саша — вход в школу 7.' });
    expect(exit).toMatchObject({ event: 'exit', subject: 'Саша: выход из школы', text: '02.12.2026 в 08:03: Саша — выход из школы 7.' });
    for (const m of [entry!, exit!]) expect(m.messageId).toBe(`<${m.key}@resident-card>`);
    expect(new Set(hook.hooks.map((h) => h.body.event))).toEqual(new Set(['entry', 'exit']));
    for (const h of hook.hooks) {
      expect(h).toMatchObject({ signatureOk: true, timestampOk: true });
      expect(h.body).toMatchObject({ key: h.key, child: 'Сашенька', school: '7' });
    }
    expect(hook.hooks.find((h) => h.body.event === 'entry')!.body).toMatchObject({ direction: 'entry', localTime: '2026-12-02 08:01' });
    // the mail and the webhook of one passage are different messages (one per guardian)
    expect(new Set([...mailsTo('mum@example.org'), ...hook.hooks].map((m) => m.key)).size).toBe(4);
    expect(mailsTo('gran@example.org')).toHaveLength(0);
    expect(stack.server.db.prepare("SELECT count(*) FROM notify_outbox WHERE guardian_id = 'g-gran'").pluck().get()).toBe(0);
    // no card number, no token, no person id in anything sent
    const sent = [...smtp.mails.map((m) => m.raw), ...hook.hooks.map((h) => h.raw)].join('\n');
    for (const secret of [syntheticPan(1), tokenOf(1), tokenOf(1).toUpperCase(), 'p1']) expect(sent).not.toContain(secret);
  });

  it('an SMTP server that refuses: the message stays in the outbox, shows in status with its reason, and is delivered once after', async () => {
    smtp.refuseWith = 451;
    setClock('08:10');
    expect(tapAs(2, 'entry')).toMatchObject({ result: 'allow' });
    await waitFor(() => (row('p2', 'entry')?.attempts ?? 0) >= 2, { timeoutMs: 10_000, what: 'two failed attempts' });
    const st = await outbox();
    const m = st.messages.find((x) => x.person === 'p2')!;
    expect(m).toMatchObject({ state: 'pending', event: 'entry', guardian: 'g2' });
    expect(m.lastError).toMatch(/^notify\.transport-failed: smtp: .*451/);
    expect(st.counts.pending).toBeGreaterThanOrEqual(1);
    const status = (await (await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, '/v1/status')).json()) as { notifications: unknown };
    expect(status.notifications).toMatchObject({ pending: st.counts.pending, failed: 0 });
    smtp.refuseWith = null;
    await waitFor(() => row('p2', 'entry')?.state === 'sent', { timeoutMs: 10_000, what: 'delivered after the SMTP server recovered' });
    expect(mailsTo('m2@example.org').map((x) => x.key)).toEqual([m.key]);
    expect((await outbox()).messages.find((x) => x.person === 'p2')).toBeUndefined();
  });

  it('a webhook answering 503 is retried; the same key is accepted once', async () => {
    hook.answer = 503;
    const before = hook.hooks.length;
    await importText(
      stack,
      'guardians',
      `person_id,guardian_id,child_name,channel,address,consent,events,secret\np6,g6,Дима,webhook,${hook.url},yes,entry,${SECRET}\n`,
    );
    setClock('08:12');
    expect(tapAs(6, 'entry')).toMatchObject({ result: 'allow' });
    await waitFor(() => (row('p6', 'entry')?.attempts ?? 0) >= 2, { timeoutMs: 10_000, what: 'two refused webhook calls' });
    expect(row('p6', 'entry')).toMatchObject({ state: 'pending', err: 'notify.transport-failed: webhook: HTTP 503' });
    hook.answer = null;
    await waitFor(() => row('p6', 'entry')?.state === 'sent', { timeoutMs: 10_000, what: 'webhook delivered' });
    expect(hook.hooks.slice(before).map((h) => h.key)).toEqual([row('p6', 'entry')!.key]);
  });

  it('a pending message survives a server restart and is delivered once', async () => {
    smtp.refuseWith = 451;
    setClock('08:20');
    expect(tapAs(5, 'entry')).toMatchObject({ result: 'allow' });
    await waitFor(() => (row('p5', 'entry')?.attempts ?? 0) >= 1, { timeoutMs: 10_000, what: 'a failed attempt before the restart' });
    const key = row('p5', 'entry')!.key;
    await stack.restartServer();
    expect(row('p5', 'entry')).toMatchObject({ key, state: 'pending' });
    smtp.refuseWith = null;
    await waitFor(() => row('p5', 'entry')?.state === 'sent', { timeoutMs: 10_000, what: 'delivered by the restarted server' });
    await stack.server.notifier.runOnce();
    expect(mailsTo('o5@example.org').map((m) => m.key)).toEqual([key]);
  });

  it('"not arrived by 09:00" on a school day: one message per absent student, once; a student who came gets none', async () => {
    setClock('08:59');
    await stack.server.notifier.runOnce();
    expect(mailsTo('k4@example.org')).toHaveLength(0);
    setClock('09:01');
    await waitFor(() => mailsTo('k4@example.org').length === 1, {
      timeoutMs: 10_000,
      what: () =>
        'the absence mail ' +
        stack.logs.lines
          .filter((l) => l.includes('notif') || l.includes('absen'))
          .slice(-5)
          .join(''),
    });
    expect(mailsTo('k4@example.org')[0]).toMatchObject({ event: 'absent', text: '02.12.2026: Коля не прошёл(-ла) в школу 7 до 09:00.' });
    await stack.server.notifier.runOnce();
    await stack.server.notifier.runOnce();
    expect(mailsTo('k4@example.org')).toHaveLength(1);
    // p1 came in at 08:01: their mother chose absences too, and gets none
    expect(mailsTo('mum@example.org').filter((m) => m.event === 'absent')).toHaveLength(0);
    expect(stack.server.db.prepare("SELECT count(*) FROM notify_absent WHERE day = '2026-12-02'").pluck().get()).toBe(6);
  });

  it('guardian rows with bad addresses are refused row by row; the good rows are imported with --skip-invalid', async () => {
    const csv =
      [
        'person_id,guardian_id,child_name,channel,address,consent,events,secret',
        'p6,g6b,Дима,email,not-an-address,yes,entry,',
        'p6,g6c,Дима,webhook,http://gateway.example.org/hook,yes,entry,' + SECRET,
        'p6,g6d,Дима,email,dima.mum@example.org,yes,entry;meal,',
        'p6,g6e,Дима,sms,+79001234567,yes,entry,',
      ].join('\n') + '\n';
    const e = await expectRcError(importText(stack, 'guardians', csv), 'server.import-invalid');
    expect(e.context?.report).toMatchObject({
      kind: 'guardians',
      rows: 4,
      rejected: 3,
      errors: [
        { line: 2, column: 'address', reason: 'address: not a valid e-mail address' },
        { line: 3, column: 'address', reason: 'address: a webhook must be an https URL (http only on loopback)' },
        { line: 5, column: 'channel', reason: 'channel: email or webhook' },
      ],
    });
    const res = await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, '/v1/import/guardians?skipInvalid=true', {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: csv,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { report: unknown }).report).toMatchObject({ rows: 4, applied: 1, rejected: 3 });
    expect(stack.server.db.prepare("SELECT guardian_id FROM guardians WHERE person_id = 'p6' ORDER BY guardian_id").pluck().all()).toEqual(['g6d']);
  });
});
