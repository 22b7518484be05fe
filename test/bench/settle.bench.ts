// npm run bench:settle [-- --taps 1000000] [--cards N] [--devices N] [--dir DIR]
//
// The back office's fare engine at fleet scale: a real registry (SQLite file)
// with a published tariff and a transit list (a fifth of the cards pensioners
// with a monthly quota), one service day of taps (default 1,000,000 taps of
// 200,000 cards over 2,000 buses, each bus on one of 40 routes) ingested as
// journal batches, then:
//   settle  — settle every card's day and close it: one aggregated charge per card
//             (target ≤ 60 s for 1,000,000 taps)
//   late    — one more bus, offline all day, uploads its journal: its cards' day is
//             re-settled and their charges corrected (target ≤ 1 s)
// Last line: one JSON object.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransitEntry } from '../../protocol/lists.js';
import { encodeRecords } from '../../protocol/wire/codec.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { Ingest } from '../../sync-server/ingest.js';
import { openRegistry } from '../../sync-server/registry.js';
import { Settlement } from '../../sync-server/settlement/index.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const TAPS = arg('taps', 1_000_000);
const CARDS = arg('cards', Math.max(1, Math.round(TAPS / 5)));
const DEVICES = arg('devices', Math.max(1, Math.round(TAPS / 500)));
const ROUTES = 40;
const dirArg = process.argv.indexOf('--dir');
const dir = dirArg > 0 ? process.argv[dirArg + 1]! : mkdtempSync(join(tmpdir(), 'rc-bench-settle-'));

let seed = 0x5eed;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 0x1_0000_0000;
const token = (i: number) => i.toString(16).padStart(32, '0');
const DAY_START = Date.parse('2026-11-10T05:00:00+03:00');
const DAY_SPAN = 18 * 3_600_000; // 05:00 to 23:00 Moscow
const NOW = new Date('2026-11-11T12:00:00+03:00'); // the day has ended

const db = openRegistry(dir);
db.pragma('synchronous = OFF');
const routes: Record<string, { fullFareKopecks: number }> = {};
for (let r = 0; r < ROUTES; r++) routes[String(r)] = { fullFareKopecks: 3500 };
const rules = {
  schema: 1,
  tariff: {
    version: 1,
    routes,
    benefits: { pensioner: { kind: 'percent', percentOff: 50, quota: { trips: 18, per: 'month', onExhausted: 'full-fare' } } },
    repeatWindowSec: 420,
    transfer: { windowSec: 3600, fareKopecks: 0, maxTransfers: 1 },
    dailyCapKopecks: 10_000,
  },
};
db.prepare("INSERT INTO configs(name, version, doc, updated_at) VALUES ('rules', 1, ?, ?)").run(JSON.stringify(rules), NOW.toISOString());
const putEntry = db.prepare("INSERT INTO entries(scope, token, rec) VALUES ('transit', ?, ?)");
db.transaction(() => {
  for (let c = 0; c < CARDS; c++) {
    const benefits: TransitEntry['benefits'] = c % 5 === 0 ? [{ category: 'pensioner', validFrom: '2020-01-01', validTo: '2099-12-31' }] : [];
    const e: TransitEntry = { token: token(c), cardExpiry: '2030-12', benefits };
    putEntry.run(e.token, encodeRecords('transit', [e]));
  }
})();

/** One device's day: taps of random cards at random times, as its journal (the device saw only its own taps: full fare). */
function deviceDay(d: number, n: number): WireJournalEntry[] {
  const times = Array.from({ length: n }, () => DAY_START + Math.floor(rnd() * DAY_SPAN)).sort((a, b) => a - b);
  return times.map((t, i) => {
    const time = new Date(t).toISOString();
    return {
      seq: i + 1,
      time,
      token: token(Math.floor(rnd() * CARDS)),
      kind: 'bus',
      result: 'allow' as const,
      reason: 'full-fare',
      fareKopecks: 3500,
      benefit: null,
      lists: { transit: 1 },
      data: { effectiveTime: time, route: String(d % ROUTES), vehicle: `V${d}`, flags: ['deferred-charge'] },
    };
  });
}

const ingest = new Ingest(db);
const t0 = performance.now();
const perDevice = Math.floor(TAPS / DEVICES);
let ingested = 0;
for (let d = 0; d < DEVICES; d++) {
  const n = d === DEVICES - 1 ? TAPS - perDevice * (DEVICES - 1) : perDevice;
  const entries = deviceDay(d, n);
  for (let i = 0; i < entries.length; i += 5000) ingest.store(`bus-${d}`, null, { device: `bus-${d}`, entries: entries.slice(i, i + 5000) }, NOW);
  ingested += n;
}
const ingestMs = performance.now() - t0;

const settlement = new Settlement(db);
const c1 = process.cpuUsage();
const t1 = performance.now();
const rep = settlement.settleDirty(NOW);
const charges = settlement.closeDays(NOW);
const settleMs = performance.now() - t1;
const settleCpu = process.cpuUsage(c1);

// a bus that was offline all day uploads its journal the next morning
const late = deviceDay(DEVICES, perDevice);
const t2 = performance.now();
for (let i = 0; i < late.length; i += 5000) ingest.store('bus-late', null, { device: 'bus-late', entries: late.slice(i, i + 5000) }, NOW);
const lateRep = settlement.settleDirty(NOW);
const lateCharges = settlement.closeDays(NOW);
const lateMs = performance.now() - t2;

const adjustments = db.prepare('SELECT count(*) FROM adjustments').pluck().get() as number;
db.close();
if (dirArg < 0) rmSync(dir, { recursive: true, force: true });

const out = {
  bench: 'settle',
  taps: ingested,
  cards: CARDS,
  devices: DEVICES,
  ingestMs: Math.round(ingestMs),
  settleMs: Math.round(settleMs),
  /** CPU time of the settle phase (the wall time includes waiting for a shared machine's cores) */
  settleCpuMs: Math.round((settleCpu.user + settleCpu.system) / 1000),
  settledCards: rep.cards,
  settledTaps: rep.taps,
  tapsPerSec: Math.round(rep.taps / (settleMs / 1000)),
  charges,
  lateTaps: late.length,
  lateCards: lateRep.cards,
  lateResettledTaps: lateRep.taps,
  lateNewCharges: lateCharges,
  lateMs: Math.round(lateMs),
  adjustments,
  targets: { settleMsPer1M: 60_000, lateMs: 1000 },
  settleMsPer1M: Math.round((settleMs * 1_000_000) / Math.max(1, ingested)),
};
console.log(JSON.stringify(out));
