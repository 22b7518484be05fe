// npm run bench:usage [-- --cards 200000] [--taps 2000] [--tick 500] [--dir DIR]
//
// Fleet usage (issue 10 item 4):
//  1. wire: a usage snapshot of N active cards (default 200,000): bytes per card, signed message size;
//  2. device: apply that snapshot to a real SQLite store, then one tap = readView (own counters +
//     fleet usage merged) + decide + durable journal commit (WAL, synchronous=FULL), p50/p99;
//  3. server: one second's worth of recomputation at 500 taps/s (--tick): fleetUsage + usageCards for
//     that many cards with ~10 journal rows each, in memory (the registry reads are not in this figure).
// Last line: one JSON object.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../device/config/load.js';
import { processTap } from '../../device/runtime/process-tap.js';
import { Store } from '../../device/store/store.js';
import { usageContext } from '../../device/store/usage-merge.js';
import { deviceKey, encodeUsage, sealUsage, type UsageCard } from '../../protocol/wire/usage-codec.js';
import { fleetUsage, serviceDay, settlementOptions, usageCards, type JournalRow } from '../../sync-server/settlement/index.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const CARDS = arg('cards', 200_000);
const TAPS = arg('taps', 2000);
const TICK = arg('tick', 500);
const dirArg = process.argv.indexOf('--dir');
const dir = dirArg > 0 ? process.argv[dirArg + 1]! : mkdtempSync(join(tmpdir(), 'rc-bench-usage-'));

const cfg = loadConfig({
  schema: 1,
  device: { id: 'bench-bus', kind: 'bus', route: '2', vehicle: 'B1', timeZone: 'Europe/Moscow' },
  tariff: {
    version: 1,
    routes: { '1': { fullFareKopecks: 3500 }, '2': { fullFareKopecks: 3500 }, '3': { fullFareKopecks: 3500 } },
    benefits: { pensioner: { kind: 'percent', percentOff: 50, quota: { trips: 40, per: 'month', onExhausted: 'full-fare' } } },
    repeatWindowSec: 420,
    transfer: { windowSec: 3600, fareKopecks: 0, maxTransfers: 1 },
    dailyCapKopecks: 10000,
  },
});
const tariff = cfg.tariff!;
const now = Date.parse('2026-11-24T12:00:00+03:00');
const day = { date: '2026-11-24', startMs: Date.parse('2026-11-24T00:00:00+03:00') };
const pct = (xs: number[], p: number) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

// 1. wire
const tokens = Array.from({ length: CARDS }, () => randomBytes(16).toString('hex')).sort();
const cards: UsageCard[] = tokens.map((token, i) => ({
  token,
  quotaCategory: i % 3 === 0 ? 'pensioner' : null,
  quotaUsed: i % 3 === 0 ? 1 + (i % 20) : 0,
  fareToday: 1750 * (i % 4),
  lastPaid: i % 2 === 0 ? { effMs: now - (i % 3000) * 1000, routeIndex: i % 3, transfers: 0 } : null,
}));
const watermarks = Array.from({ length: 1000 }, (_, i) => ({ key: deviceKey(`bus-${i}`), seq: 1000 + i }));
const t0 = performance.now();
const records = encodeUsage(day, cards, watermarks);
const encodeMs = performance.now() - t0;
const { privateKey } = generateKeyPairSync('ed25519');
const sealed = sealUsage(null, Math.floor(now / 1000), records, new Date(now), 86_400_000, privateKey);
const cardBytes = (records.length - 24 * (1 + watermarks.length)) / CARDS;

// 2. device
const store = Store.open(join(dir, 'store.db'), { deviceId: 'bus-7' });
store.setUsageContext(usageContext(tariff));
const t1 = performance.now();
store.applyUsage({ fromVersion: null, toVersion: 1, records });
const applyMs = performance.now() - t1;
const lat: number[] = [];
let mono = 0;
for (let i = 0; i < TAPS; i++) {
  const token = tokens[(i * 7919) % CARDS]!;
  mono += 1_000_000;
  const s = performance.now();
  processTap(store, { wallTime: now + i * 1000, monotonicMs: mono, bootId: 'bench', direction: null, card: { token, expiry: null } }, cfg);
  lat.push(performance.now() - s);
  if (i % 50 === 49) store.maintenance();
}
const settings = store.settings();
store.close();

// 3. server tick
const o = settlementOptions();
const rows: JournalRow[] = [];
for (let c = 0; c < TICK; c++)
  for (let k = 0; k < 10; k++) {
    const eff = now - (10 - k) * 40 * 60_000;
    rows.push({
      device: `bus-${k}`,
      seq: c * 10 + k + 1,
      token: tokens[c]!,
      kind: 'bus',
      result: 'allow',
      reason: 'full-fare',
      fare: 3500,
      route: String(1 + (k % 3)),
      vehicle: `v${k}`,
      flags: '[]',
      eff_ms: eff,
      service_day: serviceDay(eff, o),
      settled_fare: null,
      settled_reason: null,
      settle_code: null,
    });
  }
const t2 = performance.now();
const tick = usageCards(
  fleetUsage(rows, () => null, tariff, o, now),
  tariff,
  day.date,
);
const tickMs = performance.now() - t2;
if (dirArg < 0) rmSync(dir, { recursive: true, force: true });

const out = {
  cards: CARDS,
  bytesPerCard: cardBytes,
  snapshotBytes: sealed.length,
  encodeMs: Math.round(encodeMs),
  deviceApplyMs: Math.round(applyMs),
  taps: TAPS,
  tapP50Ms: +pct(lat, 50).toFixed(3),
  tapP99Ms: +pct(lat, 99).toFixed(3),
  synchronous: settings.synchronous,
  tickCards: tick.length,
  tickComputeMs: +tickMs.toFixed(1),
};
console.log(JSON.stringify(out));
