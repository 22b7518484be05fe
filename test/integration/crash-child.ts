// Child of test/integration/crash.test.ts (not a test itself).
//   node --import tsx test/integration/crash-child.ts DB SEED [snapshot-first]
// Prints "L" when loaded, waits for "go" on stdin, opens the store, prints
// "R <lastSeq>", then loops forever: taps (prints "C <seq> <token>" AFTER the
// commit returned), transit snapshots of a sizeable list ("S v" before, "A v"
// after), stop-list deltas ("D v" after). The parent SIGKILLs it at random.
import { createHash } from 'node:crypto';
import { loadConfig } from '../../device/config/load.js';
import { Store } from '../../device/store/store.js';
import { processTap } from '../../device/runtime/process-tap.js';
import type { TransitEntry } from '../../protocol/lists.js';

const [dbPath, seedArg, mode] = process.argv.slice(2);
let seed = Number(seedArg) >>> 0 || 1;
const rnd = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** The transit list of version v: its size and a marker date in every entry, so a mix of versions shows. */
export const listSize = (v: number): number => 12_000 + ((v * 7919) % 3000);
export const marker = (v: number): string => new Date(Date.UTC(2030, 0, 1) + v * 86_400_000).toISOString().slice(0, 10);
const token = (v: number, i: number): string => createHash('sha256').update(`${v}:${i}`).digest('hex').slice(0, 32);
function list(v: number): TransitEntry[] {
  const m = marker(v);
  const out: TransitEntry[] = new Array(listSize(v));
  for (let i = 0; i < out.length; i++)
    out[i] = { token: token(v, i), cardExpiry: '2031-01', benefits: [{ category: 'pensioner', validFrom: '2020-01-01', validTo: m }] };
  return out;
}

const cfg = loadConfig({
  schema: 1,
  device: { id: 'crash-dev', kind: 'bus', route: '7', vehicle: 'V' },
  tariff: {
    routes: { '7': { fullFareKopecks: 3500 } },
    benefits: { pensioner: { kind: 'free', quota: { trips: 5, per: 'day' } } },
    repeatWindowSec: 0,
    dailyCapKopecks: 20000,
  },
});
const out = (s: string) => process.stdout.write(s + '\n');

function run(): never {
  const store = Store.open(dbPath!, { deviceId: 'crash-dev' });
  out(`R ${store.lastSeq()}`);
  let wall = Date.parse('2026-11-24T06:00:00Z') + store.lastSeq() * 1000;
  let first = mode === 'snapshot-first';
  for (;;) {
    const r = first ? 0 : rnd();
    first = false;
    if (r < 0.04) {
      const v = store.listVersion('transit') + 1;
      const entries = list(v);
      out(`S ${v}`);
      if (rnd() < 0.5) store.applySnapshot({ scope: 'transit', version: v, entries });
      else {
        const w = store.beginSnapshot('transit', v);
        for (let i = 0; i < entries.length; i += 2500) w.add(entries.slice(i, i + 2500));
        w.commit();
      }
      out(`A ${v}`);
    } else if (r < 0.08) {
      const v = store.listVersion('stoplist') + 1;
      store.applyDelta({
        scope: 'stoplist',
        fromVersion: v - 1,
        toVersion: v,
        upserts: [{ token: token(-1, v), reason: 'charge-declined', since: '2026-11-01' }],
        removes: [],
      });
      out(`D ${v}`);
    } else {
      const v = store.listVersion('transit');
      const t = v > 0 && rnd() < 0.5 ? token(v, Math.floor(rnd() * 100)) : token(-2, Math.floor(rnd() * 50));
      wall += 1000;
      const { entry } = processTap(store, { wallTime: wall, monotonicMs: wall, bootId: 'crash', direction: null, card: { token: t, expiry: null } }, cfg);
      out(`C ${entry.seq} ${t}`);
    }
  }
}

if (/crash-child\.(ts|mjs)$/.test(process.argv[1] ?? '')) {
  out('L');
  let buf = '';
  process.stdin.on('data', (d) => {
    buf += String(d);
    if (buf.includes('go\n')) run();
  });
}
