// npm run bench:decide [-- --entries 10000000 | --10m] [--taps 3000] [--chunk 2000] [--dir DIR] [--no-idle-maintenance]
//
// Builds a transit whitelist of N entries (default 1,000,000) in a real SQLite
// store (streamed in chunks, as a chunked snapshot download would), then
// measures one tap = readView + decide + durable journal commit
// (WAL, synchronous=FULL: fsync before the result). Between taps the bench calls
// store.maintenance() every 50 taps, as the runtime does when idle (a WAL
// checkpoint is not part of a tap; --no-idle-maintenance to leave it to SQLite's
// auto-checkpoint). Last line: one JSON object.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../device/config/load.js';
import { Store } from '../../device/store/store.js';
import { processTap } from '../../device/runtime/process-tap.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const ENTRIES = arg('entries', process.argv.includes('--10m') ? 10_000_000 : 1_000_000);
const TAPS = arg('taps', 3000);
const CHUNK = arg('chunk', 2_000);
const dirArg = process.argv.indexOf('--dir');
const idleMaintenance = !process.argv.includes('--no-idle-maintenance');
const dir = dirArg > 0 ? process.argv[dirArg + 1]! : mkdtempSync(join(tmpdir(), 'rc-bench-decide-'));
const dbPath = join(dir, 'store.db');

const cfg = loadConfig({
  schema: 1,
  device: { id: 'bench-bus', kind: 'bus', route: '7', vehicle: 'B1' },
  tariff: {
    routes: { '7': { fullFareKopecks: 3500 } },
    benefits: { pensioner: { kind: 'free', quota: { trips: 60, per: 'month' } }, schoolchild: { kind: 'percent', percentOff: 50 } },
    repeatWindowSec: 420,
    dailyCapKopecks: 20000,
  },
});

const store = Store.open(dbPath, { deviceId: 'bench-bus' });
const sample: string[] = [];
const t0 = performance.now();
const w = store.beginSnapshot('transit', 1);
for (let done = 0; done < ENTRIES; done += CHUNK) {
  const n = Math.min(CHUNK, ENTRIES - done);
  const bytes = randomBytes(16 * n);
  const chunk = new Array(n);
  for (let i = 0; i < n; i++) {
    const token = bytes.toString('hex', i * 16, i * 16 + 16);
    if (sample.length < 2000 && i % 97 === 0) sample.push(token);
    chunk[i] = {
      token,
      cardExpiry: '2029-12',
      benefits: [{ category: i % 3 === 0 ? 'schoolchild' : 'pensioner', validFrom: '2024-01-01', validTo: '2030-12-31' }],
    };
  }
  w.add(chunk);
  if (done % 250_000 === 0 && done > 0)
    process.stderr.write(`loaded ${done} in ${((performance.now() - t0) / 1000).toFixed(1)} s, rss ${Math.round(process.memoryUsage.rss() / 1e6)} MB\n`);
}
const tc = performance.now();
w.commit();
process.stderr.write(`commit (index + swap + checkpoint) ${((performance.now() - tc) / 1000).toFixed(1)} s\n`);
const loadMs = performance.now() - t0;
console.log(`whitelist: ${ENTRIES} entries loaded in ${(loadMs / 1000).toFixed(2)} s; db ${(statSync(dbPath).size / 1e6).toFixed(0)} MB`);

// Baseline, measured at the same moments: a bare one-row durable commit on the
// same disk with the same settings. A tap cannot be faster than this fsync; the
// difference is what the decision and the store add.
const base = new Database(join(dir, 'baseline.db'));
base.pragma('journal_mode = WAL');
base.pragma('synchronous = FULL');
base.exec('CREATE TABLE IF NOT EXISTS t (x INTEGER)');
const baseIns = base.prepare('INSERT INTO t (x) VALUES (?)');
const baseLat: number[] = [];

const lat: number[] = [];
let wall = Date.parse('2026-11-24T06:00:00+03:00');
for (let i = 0; i < TAPS; i++) {
  wall += 1000;
  const token = i % 10 === 9 ? randomBytes(16).toString('hex') : sample[(i * 7919) % sample.length]!;
  const tap = { wallTime: wall, monotonicMs: wall, bootId: 'bench', direction: null, card: { token, expiry: null } };
  const s = performance.now();
  processTap(store, tap, cfg);
  lat.push(performance.now() - s);
  const b = performance.now();
  baseIns.run(i);
  baseLat.push(performance.now() - b);
  // the runtime checkpoints while idle between taps (store.maintenance()); not part of a tap
  if (idleMaintenance && i % 50 === 49) store.maintenance();
}
lat.sort((a, b) => a - b);
baseLat.sort((a, b) => a - b);
const q = (p: number, arr = lat) => arr[Math.min(arr.length - 1, Math.floor(p * arr.length))]!;
base.close();
const rssMb = Math.round(process.resourceUsage().maxRSS / 1024);
console.log(`sqlite: ${JSON.stringify({ journal_mode: store.settings().journalMode, synchronous: store.settings().synchronous })} (synchronous 2 = FULL)`);
console.log(
  `baseline (bare 1-row commit, WAL + synchronous=FULL, same disk, interleaved): p50 ${q(0.5, baseLat).toFixed(3)} ms, p99 ${q(0.99, baseLat).toFixed(3)} ms`,
);
console.log(
  `taps: ${TAPS}, decide + durable commit: p50 ${q(0.5).toFixed(3)} ms, p99 ${q(0.99).toFixed(3)} ms, max ${lat[lat.length - 1]!.toFixed(3)} ms; peak RSS ${rssMb} MB`,
);
store.close();
if (dirArg < 0) rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ entries: ENTRIES, loadMs: Math.round(loadMs), p50Ms: +q(0.5).toFixed(3), p99Ms: +q(0.99).toFixed(3), rssMb }));
