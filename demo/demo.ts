import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../protocol/log.js';
import { withLuhnDigit } from '../protocol/pan.js';
import { DEV_TOKEN_KEY } from '../protocol/token.js';
import { startServer, type RunningServer } from '../sync-server/server.js';
import { parseCabinetConfig } from '../sync-server/cabinet/provider.js';
import type { DemoPerson } from '../sync-server/cabinet/demo-provider.js';
import { importIdentities, snilsKey } from '../sync-server/cabinet/service.js';
import { loadConfig } from '../device/config/load.js';
import type { Config } from '../device/config/schema.js';
import { VirtualReaderSource } from '../device/reader/virtual.js';
import { startDevice, type RunningDevice } from '../device/runtime/device.js';
import type { Clock } from '../device/runtime/clock.js';
import type { OutcomeReport } from '../device/runtime/events.js';
import type { TapReport } from '../device/runtime/status.js';
import type { VCardSpec } from '../device/vcard/spec.js';

/**
 * The demo behind `npm start`: everything in one process, no hardware, no
 * external services. A sync-server with its embedded MQTT broker and a seeded
 * registry (imported by the server's own CSV import), a bus validator and a
 * school turnstile, each with an in-process virtual card reader and console
 * peripherals, syncing their lists from the server; then scripted taps, and
 * at the end the journal reaching the server.
 */

export interface DemoCard {
  key: string;
  label: { ru: string; en: string };
  spec: VCardSpec;
}

const mir = (body: string, psn: string, expiry = '2029-06'): VCardSpec => ({ kind: 'emv', pan: withLuhnDigit(body), expiry, psn });

/** The demo's cards (synthetic numbers). Keys are what `demo:interactive` asks for. */
export const CARDS = {
  pensioner: { key: '1', label: { ru: 'пенсионерка Анна (льгота)', en: 'Anna, pensioner (benefit)' }, spec: mir('220070000000001', '01') },
  unknown: { key: '2', label: { ru: 'незнакомая карта «Мир»', en: 'an unknown Mir card' }, spec: mir('220070000000002', '01') },
  stopped: { key: '3', label: { ru: 'заблокированная карта', en: 'a stop-listed card' }, spec: mir('220070000000003', '02') },
  student: { key: '4', label: { ru: 'школьник Тимур, 5 класс', en: 'Timur, 5th-grade student' }, spec: mir('220070000000004', '01') },
  visa: {
    key: '6',
    label: { ru: 'карта Visa', en: 'a Visa card' },
    spec: { kind: 'emv', scheme: 'visa', pan: withLuhnDigit('411111111111111'), expiry: '2029-01', psn: '00' },
  },
} satisfies Record<string, DemoCard>;

function pan(c: DemoCard): string {
  if (c.spec.kind !== 'emv') throw new Error('demo cards are synthetic EMV cards');
  return c.spec.pan;
}

/**
 * Who can sign in to the cardholder's cabinet in the demo (the demo's identity provider, no ESIA): the pensioner, the
 * student's mother (his guardian in the registry) and a guest the registry does not know. SNILS are synthetic; they link
 * the person to the registry as ESIA's would (the server keeps keyed hashes only).
 */
export const DEMO_PERSONS = {
  anna: { person: 'P-ANNA', signIn: { id: 'anna', name: 'Анна Очирова', snils: '11223344595' } },
  baira: { person: 'P-BAIRA', signIn: { id: 'baira', name: 'Баира Манджиева', snils: '12345678964' } },
  guest: { person: null, signIn: { id: 'guest', name: 'Гость без карты' } },
} satisfies Record<string, { person: string | null; signIn: DemoPerson }>;

/** The registry as the agencies would send it (CSV, imported by the server's own import code). */
export function registryCsv(): Record<'cards' | 'benefits' | 'enrolments' | 'stoplist' | 'guardians', string> {
  // the token is PAN ‖ expiry: the banks' files carry both, as the card itself does
  const expiry = (c: DemoCard) => (c.spec.kind === 'emv' ? c.spec.expiry : '');
  return {
    cards: [
      'person_id,pan,expiry',
      `P-ANNA,${pan(CARDS.pensioner)},${expiry(CARDS.pensioner)}`,
      `P-TIMUR,${pan(CARDS.student)},${expiry(CARDS.student)}`,
      `P-LOST,${pan(CARDS.stopped)},${expiry(CARDS.stopped)}`,
    ].join('\n'),
    benefits: ['person_id,category,valid_from,valid_to', 'P-ANNA,pensioner,2020-01-01,2030-12-31'].join('\n'),
    enrolments: ['person_id,school_id,role,grade,meal_category,valid_from,valid_to', 'P-TIMUR,7,student,5,free-breakfast,2026-09-01,2027-05-31'].join('\n'),
    stoplist: ['pan,expiry,reason', `${pan(CARDS.stopped)},${expiry(CARDS.stopped)},lost`].join('\n'),
    // Timur's mother sees his school days in the cabinet (no consent to notifications: the demo sends no e-mail)
    guardians: ['person_id,guardian_id,child_name,channel,address,consent,events', 'P-TIMUR,P-BAIRA,Тимур,email,baira@example.ru,no,'].join('\n'),
  };
}

/** The demo's tariff: the bus runs with it, and the server publishes it as the operator's rules (the portal's measures). */
export const DEMO_TARIFF = {
  version: 1,
  routes: { '7': { fullFareKopecks: 3500 } },
  benefits: { pensioner: { kind: 'free', quota: { trips: 40, per: 'month' } }, schoolchild: { kind: 'percent', percentOff: 50 } },
  repeatWindowSec: 420,
  dailyCapKopecks: 10000,
} as const;

/** The rules document the demo publishes, as an operator does with `rc-sync-server config set rules.json` (name `rules`). */
export const demoRules = () => ({ schema: 1, tariff: DEMO_TARIFF });

export function busConfig(brokerUrl: string, serverPublicKey: string, dataDir: string): Config {
  return loadConfig({
    schema: 1,
    device: { id: 'bus-7-demo', kind: 'bus', timeZone: 'Europe/Moscow', route: '7', vehicle: 'A777AA08' },
    tariff: DEMO_TARIFF,
    peripherals: [{ kind: 'console', options: { name: 'bus-display' } }],
    sync: { brokerUrl, serverPublicKey },
    runtime: { dataDir },
  });
}

export function turnstileConfig(brokerUrl: string, serverPublicKey: string, dataDir: string): Config {
  return loadConfig({
    schema: 1,
    device: { id: 'school-7-gate-demo', kind: 'turnstile', timeZone: 'Europe/Moscow', schoolId: '7' },
    school: {
      schedules: {
        student: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '07:30', to: '15:00' }],
        staff: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'], from: '06:30', to: '20:00' }],
      },
      antiPassback: 'hard',
    },
    readers: [
      { name: 'Gate entry', direction: 'entry' },
      { name: 'Gate exit', direction: 'exit' },
    ],
    peripherals: [{ kind: 'console', options: { name: 'gate', passAfterMs: 200 } }],
    sync: { brokerUrl, serverPublicKey },
    runtime: { dataDir },
  });
}

/** A clock the script sets: wall time jumps to each scripted moment; the monotonic clock follows forward. */
export class ScriptedClock implements Clock {
  readonly bootId = 'demo';
  private wall: number;
  private mono = 1_000_000;
  constructor(startIso: string) {
    this.wall = Date.parse(startIso);
  }
  set(iso: string): void {
    this.advance(Date.parse(iso) - this.wall);
  }
  advance(ms: number): void {
    if (ms > 0) this.mono += ms;
    this.wall += ms;
  }
  wallMs(): number {
    return this.wall;
  }
  monoMs(): number {
    return this.mono;
  }
}

export interface DemoWorld {
  server: RunningServer;
  /** Where a browser opens the console, the cabinet and the portal (one port, loopback). */
  urls: { console: string; cabinet: string; portal: string };
  bus: RunningDevice;
  gate: RunningDevice;
  busReaders: VirtualReaderSource;
  gateReaders: VirtualReaderSource;
  clock: Clock & { set?(iso: string): void };
  /** What the console peripherals printed since the last take. */
  takeConsole(): string[];
  close(): Promise<void>;
}

export interface DemoOutput {
  line(s: string): void;
}

const quietLogger = (level: string): Logger =>
  level === 'silent' ? createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }) : createLogger({ level });

/**
 * Server + two devices, lists synced. The cabinet signs in through the demo's identity provider (allowed here only: demo:
 * true) and runs on the demo's clock, so the scripted day is "today" for trips and school days. webDir: the cabinet's and
 * the portal's bundles (default: the server's findWebDir, dist/ after npm run build).
 */
export async function startDemoWorld(o: {
  clock: Clock;
  out: DemoOutput;
  logLevel?: string;
  syncTimeoutMs?: number;
  webDir?: string | null;
}): Promise<DemoWorld> {
  const log = quietLogger(o.logLevel ?? 'silent');
  const dir = mkdtempSync(join(tmpdir(), 'rc-demo-'));
  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const server = await startServer({
      dataDir: join(dir, 'server'),
      mqttPort: 0,
      httpPort: 0,
      tokenKey: DEV_TOKEN_KEY,
      log: log.child({ component: 'sync-server' }),
      cabinet: {
        config: parseCabinetConfig({ provider: { kind: 'demo', persons: Object.values(DEMO_PERSONS).map((p) => p.signIn) } }),
        demo: true,
        clock: () => o.clock.wallMs(),
      },
      ...(o.webDir !== undefined ? { webDir: o.webDir } : {}),
    });
    cleanups.push(() => server.close());
    // the operator's rules, published the way `rc-sync-server config set` does (the same API call): the portal shows
    // their categories and fares, the cabinet names the benefits by them, and the devices receive them over MQTT
    await server.api.setConfig('rules', demoRules());
    const csv = registryCsv();
    for (const kind of ['cards', 'benefits', 'enrolments', 'stoplist', 'guardians'] as const) {
      await server.api.importCsv(kind, lines(csv[kind]), false);
    }
    // the cabinet: the demo's persons linked by SNILS (as rc-sync-server identities import does), and the pensioner's card
    // connected as staff would (so the cabinet shows it masked; a bank file carries no masked number)
    const linked = Object.values(DEMO_PERSONS).flatMap((p) => (p.person && 'snils' in p.signIn ? [{ personId: p.person, snils: p.signIn.snils }] : []));
    importIdentities(server.db, snilsKey(join(dir, 'server')), linked);
    const annaExpiry = CARDS.pensioner.spec.kind === 'emv' ? CARDS.pensioner.spec.expiry : ''; // YYYY-MM
    await server.cabinet.staffConnect('P-ANNA', { pan: pan(CARDS.pensioner), expiry: `${annaExpiry.slice(5)}/${annaExpiry.slice(2, 4)}` }, 'demo');
    const busReaders = new VirtualReaderSource(['Bus reader']);
    const gateReaders = new VirtualReaderSource(['Gate entry', 'Gate exit']);
    const consoleLines: string[] = [];
    const consoleOut = (prefix: string) => ({ write: (l: string) => void consoleLines.push(`${prefix}${l}`) });
    const common = { log, clock: o.clock, tokenKey: DEV_TOKEN_KEY, statusSocket: false, syncOverrides: { reconnectMinMs: 200, requestAfterMs: 500 } } as const;
    const bus = await startDevice({
      ...common,
      config: busConfig(server.mqttUrl, server.publicKeyPem, join(dir, 'bus')),
      source: busReaders,
      peripheralDeps: { consoleOut: consoleOut('      табло / display:     ') },
    });
    cleanups.push(() => bus.stop());
    const gate = await startDevice({
      ...common,
      config: turnstileConfig(server.mqttUrl, server.publicKeyPem, join(dir, 'gate')),
      source: gateReaders,
      peripheralDeps: { consoleOut: consoleOut('      турникет / turnstile: ') },
    });
    cleanups.push(() => gate.stop());
    const ready = () =>
      bus.store.listVersion('transit') > 0 &&
      bus.store.listVersion('stoplist') > 0 &&
      gate.store.listVersion('school:7') > 0 &&
      gate.store.listVersion('stoplist') > 0;
    await waitUntil(ready, o.syncTimeoutMs ?? 20_000, 'the devices did not receive their lists from the server');
    const urls = { console: `${server.httpUrl}/console/`, cabinet: `${server.httpUrl}/cabinet/`, portal: `${server.httpUrl}/portal/` };
    return { server, urls, bus, gate, busReaders, gateReaders, clock: o.clock, takeConsole: () => consoleLines.splice(0), close };
  } catch (e) {
    await close();
    throw e;
  }
}

async function* lines(text: string): AsyncIterable<string> {
  yield text; // the CSV text in one chunk (the parser streams any chunking)
}

export async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what} (waited ${timeoutMs} ms)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Put a card on a reader and wait until the device has decided, journaled and signalled (and the gate's outcome, if it opened). */
export async function tapCard(
  dev: RunningDevice,
  readers: VirtualReaderSource,
  reader: string,
  card: DemoCard,
): Promise<{ tap: TapReport; outcome: OutcomeReport | null }> {
  const rt = dev.runtime;
  const tapP = rt.nextTap(reader);
  readers.present(reader, card.spec);
  const tap = await tapP;
  readers.remove(reader);
  const outcome = tap.gate ? await rt.nextOutcome(tap.seq) : null;
  return { tap, outcome };
}

export function rubles(kopecks: number): string {
  return `${Math.trunc(kopecks / 100)},${String(kopecks % 100).padStart(2, '0')} ₽`;
}

const REASON_TEXT: Record<string, { ru: string; en: string }> = {
  benefit: { ru: 'льгота', en: 'benefit applied' },
  'full-fare': { ru: 'полный тариф, спишется с карты позже', en: 'full fare, charged to the card later' },
  'stop-list': { ru: 'карта в стоп-листе', en: 'card is stop-listed' },
  'repeat-tap': { ru: 'повторное касание, не списано', en: 'repeat tap, not charged' },
  ok: { ru: 'в списке школы', en: 'enrolled in this school' },
  'outside-hours': { ru: 'вне расписания', en: 'outside school hours' },
  'not-enrolled': { ru: 'нет в списке школы', en: 'not enrolled' },
  'anti-passback': { ru: 'повторный проход', en: 'anti-passback' },
  'card.not-mir': { ru: 'не карта «Мир»', en: 'not a Mir card' },
};

/** How a person reads one tap. */
export function describeTap(
  where: string,
  card: DemoCard,
  t: TapReport,
  outcome: OutcomeReport | null,
  consoleLines: string[] = [],
  timeZone = 'Europe/Moscow',
): string[] {
  const time = new Intl.DateTimeFormat('ru-RU', { timeZone, hour: '2-digit', minute: '2-digit' }).format(new Date(t.time));
  const ok = t.result === 'allow';
  const r = REASON_TEXT[t.reason] ?? { ru: t.reason, en: t.reason };
  const fare = `${rubles(t.fareKopecks)}`;
  const benefit = t.benefit ? `, ${t.benefit}` : '';
  return [
    `${time}  ${where}: ${card.label.ru} / ${card.label.en}`,
    ...consoleLines,
    `      карта / card ${t.maskedPan ?? '(не прочитана / not read)'}${t.tokenPrefix ? `  token ${t.tokenPrefix}…` : ''}`,
    `      ${ok ? '✅ РАЗРЕШЕНО / ALLOWED' : '⛔ ОТКАЗ / DENIED'}  ${fare}  — ${r.ru} / ${r.en}${benefit}  (reason ${t.reason}, journal #${t.seq})`,
    ...(outcome
      ? [`      ${outcome.outcome === 'passed' ? 'проход зафиксирован / passage recorded' : 'проход не состоялся / nobody passed'} (journal #${outcome.seq})`]
      : []),
  ];
}

export interface ScriptStep {
  at: string; // ISO with offset
  device: 'bus' | 'gate';
  reader: string;
  card: DemoCard;
  where: string;
}

export const SCRIPT: readonly ScriptStep[] = [
  { at: '2026-11-24T08:02:00+03:00', device: 'bus', reader: 'Bus reader', card: CARDS.pensioner, where: 'Автобус 7 / Bus 7' },
  { at: '2026-11-24T08:05:00+03:00', device: 'bus', reader: 'Bus reader', card: CARDS.unknown, where: 'Автобус 7 / Bus 7' },
  { at: '2026-11-24T08:07:00+03:00', device: 'bus', reader: 'Bus reader', card: CARDS.stopped, where: 'Автобус 7 / Bus 7' },
  { at: '2026-11-24T08:08:00+03:00', device: 'bus', reader: 'Bus reader', card: CARDS.unknown, where: 'Автобус 7 / Bus 7' },
  { at: '2026-11-24T08:11:00+03:00', device: 'bus', reader: 'Bus reader', card: CARDS.visa, where: 'Автобус 7 / Bus 7' },
  { at: '2026-11-24T08:20:00+03:00', device: 'gate', reader: 'Gate entry', card: CARDS.student, where: 'Школа 7, вход / School 7, entry' },
  { at: '2026-11-24T14:35:00+03:00', device: 'gate', reader: 'Gate exit', card: CARDS.student, where: 'Школа 7, выход / School 7, exit' },
  { at: '2026-11-24T19:40:00+03:00', device: 'gate', reader: 'Gate entry', card: CARDS.student, where: 'Школа 7, вход / School 7, entry' },
];

export interface DemoResult {
  taps: { device: string; at: string; card: string; tap: TapReport; outcome: OutcomeReport | null }[];
  serverJournal: Record<string, number>;
  deviceJournal: Record<string, number>;
}

/** What to open in a browser while the demo's server runs: the console (with the first admin's password), the cabinet, the portal. */
export function browserLines(world: DemoWorld): string[] {
  const admin = world.server.firstAdmin;
  const names = Object.values(DEMO_PERSONS)
    .map((p) => p.signIn.name)
    .join(', ');
  return [
    'Откройте в браузере / open in a browser:',
    `  пульт оператора / operator console:  ${world.urls.console}${admin ? `  (${admin.name} / ${admin.password})` : ''}`,
    `  кабинет держателя / cardholder's cabinet:  ${world.urls.cabinet}  (демо-вход / demo sign-in: ${names})`,
    `  портал / public portal:  ${world.urls.portal}`,
  ];
}

/**
 * The scripted demo. Prints for people (or one JSON object per tap with json). stay: after the script, the server stays up
 * (its URLs printed) until the promise settles (npm start in a terminal: Ctrl+C); without it the demo ends at once.
 */
export async function runScriptedDemo(o: {
  out: DemoOutput;
  json?: boolean;
  logLevel?: string;
  webDir?: string | null;
  stay?: (world: DemoWorld) => Promise<void>;
}): Promise<DemoResult> {
  const out = o.json ? { line: () => undefined } : o.out;
  const clock = new ScriptedClock(SCRIPT[0]!.at);
  out.line('Resident Card demo: a sync-server with its embedded MQTT broker, a bus validator and a school turnstile, all in this process.');
  out.line('Демо «Карта жителя»: сервер синхронизации со встроенным MQTT-брокером, валидатор в автобусе и турникет в школе.');
  const world = await startDemoWorld({ clock, out, ...(o.logLevel ? { logLevel: o.logLevel } : {}), ...(o.webDir !== undefined ? { webDir: o.webDir } : {}) });
  const result: DemoResult = { taps: [], serverJournal: {}, deviceJournal: {} };
  try {
    out.line(
      `Registry imported on the server (cards, benefits, enrolments, stop-list); devices synced lists over MQTT: bus ${fmtVersions(world.bus.store.listVersions())}, turnstile ${fmtVersions(world.gate.store.listVersions())}.`,
    );
    out.line('');
    for (const step of SCRIPT) {
      clock.set(step.at);
      const dev = step.device === 'bus' ? world.bus : world.gate;
      const readers = step.device === 'bus' ? world.busReaders : world.gateReaders;
      const { tap, outcome } = await tapCard(dev, readers, step.reader, step.card);
      result.taps.push({ device: dev.runtime.config.device.id, at: step.at, card: step.card.label.en, tap, outcome });
      if (o.json) o.out.line(JSON.stringify({ device: dev.runtime.config.device.id, card: step.card.label.en, ...tap, outcome: outcome?.outcome ?? null }));
      else for (const l of describeTap(step.where, step.card, tap, outcome, world.takeConsole())) out.line(l);
      out.line('');
    }
    // the journal goes up to the server
    for (const d of [world.bus, world.gate]) result.deviceJournal[d.runtime.config.device.id] = d.store.lastSeq();
    const count = (id: string) => (world.server.db.prepare('SELECT count(DISTINCT seq) AS n FROM journal WHERE device = ?').get(id) as { n: number }).n;
    await waitUntil(
      () =>
        Object.entries(result.deviceJournal).every(([id, n]) => count(id) >= n) &&
        world.bus.store.journalBacklog() === 0 &&
        world.gate.store.journalBacklog() === 0,
      20_000,
      'the journal did not reach the server',
    );
    for (const id of Object.keys(result.deviceJournal)) result.serverJournal[id] = count(id);
    out.line('Журнал на сервере / journal on the server:');
    for (const [id, n] of Object.entries(result.serverJournal))
      out.line(`  ${id}: ${n} entries received (device wrote ${result.deviceJournal[id]}), acknowledged`);
    const charged = world.server.db.prepare(`SELECT count(*) AS n FROM journal WHERE reason = 'full-fare'`).get() as { n: number };
    out.line(`  full fares queued for deferred charging: ${charged.n}`);
    if (o.json) o.out.line(JSON.stringify({ serverJournal: result.serverJournal, deviceJournal: result.deviceJournal }));
    out.line('');
    if (o.stay) {
      for (const l of browserLines(world)) out.line(l);
      out.line('Сервер работает, Ctrl+C — выход / the server keeps running; Ctrl+C ends the demo.');
      await o.stay(world);
    } else {
      out.line('В терминале npm start оставляет сервер открытым для браузера (пульт, кабинет, портал); --serve — везде.');
      out.line('In a terminal npm start keeps the server open for a browser (console, cabinet, portal); --serve does so anywhere.');
    }
    out.line('Демо завершено / demo finished.');
  } finally {
    await world.close();
  }
  return result;
}

function fmtVersions(v: Record<string, number>): string {
  return Object.entries(v)
    .map(([s, n]) => `${s} v${n}`)
    .join(', ');
}
