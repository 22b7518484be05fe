// npm run bench:reports [-- --entries 1000000] [--dir DIR]
//
// The compensation report over a month of journal: a real registry (SQLite file) with a published
// tariff (40 routes), 4 carriers running them (route 7 changes carrier mid-month), and N journal
// entries of November 2026 (default 1,000,000; the figure is 10,000,000 in ≤ 10 s) from
// 2,000 buses, written as the back office leaves them settled: 30 % benefit trips of four categories,
// 1 % repeat taps, 0.5 % without a route, 0.5 % on a route the tariff lacks. Then:
//   build  — the compensation report of the month (every carrier), and signing it
// Last line: one JSON object.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../../protocol/reports.js';
import { openRegistry } from '../../sync-server/registry.js';
import { buildReport, signReport } from '../../sync-server/reports/index.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const ENTRIES = arg('entries', 1_000_000);
const DEVICES = 2000;
const ROUTES = 40;
const dirArg = process.argv.indexOf('--dir');
const dir = dirArg > 0 ? process.argv[dirArg + 1]! : mkdtempSync(join(tmpdir(), 'rc-bench-reports-'));

let seed = 0x5eed;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 0x1_0000_0000;
const MONTH_START = Date.parse('2026-11-01T00:00:00+03:00');
const CATEGORIES = ['pensioner', 'disabled', 'schoolchild', 'student'];

const db = openRegistry(dir);
try {
  const routes: Record<string, { fullFareKopecks: number }> = {};
  for (let r = 1; r <= ROUTES; r++) routes[String(r)] = { fullFareKopecks: 3000 + (r % 5) * 500 };
  const tariff = {
    version: 5,
    routes,
    benefits: { pensioner: { kind: 'free' }, disabled: { kind: 'free' }, schoolchild: { kind: 'percent', percentOff: 50 } },
  };
  db.prepare("INSERT INTO configs(name, version, doc, updated_at) VALUES ('rules', 1, ?, '2026-10-01T00:00:00Z')").run(JSON.stringify({ schema: 1, tariff }));
  const carriers = [
    ['C1', 'Элиста-Авто', '7707083893'],
    ['C2', 'ИП Бадмаев', '500100732259'],
    ['C3', 'Степь-Транс', '7707083893'],
    ['C4', 'Калмавтотранс', '500100732259'],
  ];
  for (const [id, name, inn] of carriers) db.prepare("INSERT INTO carriers VALUES (?, ?, ?, '2026-10-01T00:00:00Z')").run(id, name, inn);
  const rc = db.prepare('INSERT INTO route_carriers VALUES (?, ?, ?)');
  for (let r = 1; r <= ROUTES; r++) rc.run(String(r), '2026-01-01', carriers[r % 4]![0]);
  rc.run('7', '2026-11-15', 'C1');

  const t0 = performance.now();
  const ins = db.prepare(
    `INSERT INTO journal(device, seq, time, token, kind, result, reason, fare, benefit, lists, received_at, route, vehicle, flags, eff_ms, service_day,
       settled_fare, settled_reason, settle_code) VALUES (?,?,?,?, 'bus', 'allow', ?, ?, ?, '{"transit":1}', ?, ?, ?, '[]', ?, ?, ?, ?, ?)`,
  );
  const seqs = new Int32Array(DEVICES);
  const BATCH = 200_000;
  for (let done = 0; done < ENTRIES; done += BATCH) {
    db.transaction(() => {
      for (let i = done; i < Math.min(ENTRIES, done + BATCH); i++) {
        const d = Math.floor(rnd() * DEVICES);
        const seq = ++seqs[d]!;
        const ms = MONTH_START + Math.floor(rnd() * 30 * 86_400_000);
        const day = new Date(ms + 3 * 3_600_000).toISOString().slice(0, 10);
        const time = new Date(ms).toISOString();
        const x = rnd();
        let route: string | null = String(1 + (d % ROUTES));
        let reason = 'full-fare';
        let benefit: string | null = null;
        let code: string | null = null;
        const full = routes[route]!.fullFareKopecks;
        let fare = full;
        if (x < 0.3) {
          benefit = CATEGORIES[Math.floor(rnd() * 4)]!;
          reason = 'benefit';
          fare = benefit === 'schoolchild' ? full / 2 : benefit === 'student' ? 1500 : 0;
        } else if (x < 0.31) {
          reason = 'repeat-tap';
          fare = 0;
        } else if (x < 0.315) {
          route = null;
          code = 'settlement.unknown-route';
        } else if (x < 0.32) {
          route = '999';
          code = 'settlement.unknown-route';
        }
        ins.run(
          `bus-${d}`,
          seq,
          time,
          (i % 200_000).toString(16).padStart(32, '0'),
          reason,
          fare,
          benefit,
          time,
          route,
          `v-${d}`,
          ms,
          day,
          code ? null : fare,
          code ? null : reason,
          code,
        );
      }
    })();
  }
  const loadMs = performance.now() - t0;
  const key = generateKeyPairSync('ed25519');
  const pem = key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const o = { now: new Date('2026-12-01T12:00:00Z'), timeZone: 'Europe/Moscow' };
  const t1 = performance.now();
  const doc = buildReport(db, 'compensation', { month: '2026-11' }, o);
  const buildMs = performance.now() - t1;
  const signed = signReport(doc, key.privateKey, pem);
  const totalMs = performance.now() - t1;
  const rows = doc.sections[0]!.rows.length;
  const again = canonicalJson(signReport(buildReport(db, 'compensation', { month: '2026-11' }, o), key.privateKey, pem)) === canonicalJson(signed);
  console.log(
    `loaded ${ENTRIES} entries in ${(loadMs / 1000).toFixed(1)} s; compensation report: ${rows} rows in ${(buildMs / 1000).toFixed(2)} s (with signing ${(totalMs / 1000).toFixed(2)} s); same bytes twice: ${again}`,
  );
  console.log(
    JSON.stringify({
      entries: ENTRIES,
      rows,
      loadMs: Math.round(loadMs),
      buildMs: Math.round(buildMs),
      signedMs: Math.round(totalMs),
      deterministic: again,
      source: doc.source,
    }),
  );
} finally {
  db.close();
  if (dirArg < 0) rmSync(dir, { recursive: true, force: true });
}
