/**
 * npm run bench:notify [-- --students N] [--rate TAPS_PER_S]
 *
 * From a tap at the turnstile to the guardian's message accepted by the SMTP server, online: a real turnstile
 * device (store + sync client) taps each student in and out at a steady rate; its journal goes over MQTT to the
 * server, which queues the messages in the journal's transaction and sends them to a real SMTP server (the
 * smtp-server package) started here. Latency = the SMTP server's accept of the mail (its DATA done) minus the
 * moment before the tap was processed, matched by the message's idempotency key. Target: p99 <= 5 s.
 * The last line is one JSON object.
 */
import { join } from 'node:path';
import { loadConfigFile } from '../../device/config/index.js';
import { processTap } from '../../device/runtime/process-tap.js';
import { idempotencyKey } from '../../sync-server/notify/outbox.js';
import { startSmtpSink } from '../support/notify.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { importText, openDevice, startStack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const STUDENTS = Number(arg('students', '300'));
const RATE = Number(arg('rate', '20'));

// a Wednesday school morning, at real speed (the turnstile's rules and the notifications read this clock)
const offset = Date.parse('2026-12-02T08:00:00+03:00') - Date.now();
const clock = () => Date.now() + offset;

const smtp = await startSmtpSink();
const stack = await startStack('embedded', { notify: { smtpUrl: smtp.url, clock, absentBy: null } });
const cfg = loadConfigFile(join(import.meta.dirname, '..', 'fixtures', 'decide', 'turnstile.config.json'));
const dev = openDevice(stack, cfg.device.id, ['school:7', 'stoplist']);
try {
  const ids = Array.from({ length: STUDENTS }, (_, i) => i + 1);
  await importText(stack, 'cards', cardsCsv(1, STUDENTS));
  await importText(
    stack,
    'enrolments',
    ['person_id,school_id,role,grade,meal_category,valid_from,valid_to', ...ids.map((i) => `p${i},7,student,5,,2026-09-01,2027-05-31`)].join('\n') + '\n',
  );
  await importText(
    stack,
    'guardians',
    [
      'person_id,guardian_id,child_name,channel,address,consent,events',
      ...ids.map((i) => `p${i},g${i},Ребёнок ${i},email,g${i}@example.org,yes,entry;exit`),
    ].join('\n') + '\n',
  );
  const want = stack.server.publisher.version('school:7');
  await waitFor(() => dev.store.listVersion('school:7') === want, { timeoutMs: 60_000, what: 'school list on the turnstile' });

  const tapAt = new Map<string, number>();
  const latency: number[] = [];
  smtp.onMail = (m) => {
    const t0 = tapAt.get(m.key);
    if (t0 !== undefined) latency.push(m.at - t0);
  };
  let mono = 1_000_000;
  const taps = ids.flatMap((i) => [
    { i, direction: 'entry' as const },
    { i, direction: 'exit' as const },
  ]);
  // entries of everyone first, then exits (anti-passback holds either way)
  taps.sort((a, b) => (a.direction === b.direction ? a.i - b.i : a.direction === 'entry' ? -1 : 1));
  const t0 = Date.now();
  for (let n = 0; n < taps.length; n++) {
    const due = t0 + (n * 1000) / RATE;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const { i, direction } = taps[n]!;
    mono += 10_000;
    const at = Date.now();
    const r = processTap(dev.store, { wallTime: clock(), monotonicMs: mono, bootId: 'bench', direction, card: { token: tokenOf(i), expiry: null } }, cfg);
    if (r.decision.result !== 'allow') throw new Error(`tap refused: ${r.decision.reason}`);
    tapAt.set(idempotencyKey([`g${i}`, `p${i}`, direction, cfg.device.id, r.entry.seq]), at);
    dev.client.notify();
  }
  await waitFor(() => latency.length >= taps.length, { timeoutMs: 120_000, what: () => `${taps.length} mails (got ${latency.length})` });
  // where the time goes: tap to the outbox row (device upload + ingest), as the server's clock saw it
  const created = new Map(
    (stack.server.db.prepare('SELECT key, created_ms AS ms FROM notify_outbox').all() as { key: string; ms: number }[]).map((r) => [r.key, r.ms]),
  );
  const stored = [...tapAt].map(([k, t]) => (created.get(k) ?? t + offset) - offset - t); // rows are stamped on the notifications' clock
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
  const out = {
    taps: taps.length,
    mails: smtp.mails.length,
    ratePerSec: RATE,
    p50Ms: q(latency, 50),
    p99Ms: q(latency, 99),
    maxMs: Math.max(...latency),
    tapToOutboxP50Ms: q(stored, 50),
    tapToOutboxP99Ms: q(stored, 99),
    targetP99Ms: 5000,
  };
  console.log(`tap to SMTP accepted: ${out.taps} taps at ${RATE}/s, p50 ${out.p50Ms} ms, p99 ${out.p99Ms} ms, max ${out.maxMs} ms`);
  console.log(`  of which tap to the outbox (device upload, MQTT, ingest): p50 ${out.tapToOutboxP50Ms} ms, p99 ${out.tapToOutboxP99Ms} ms`);
  console.log(JSON.stringify(out));
} finally {
  await dev.close();
  await stack.close();
  await smtp.close();
}
