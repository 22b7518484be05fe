// npm run bench:soak [-- --minutes 10] [--devices 20] [--chaos-ms 3000] [--keep]
//
// The soak (issue 13): `rc-device run` buses on one `rc-sync-server start` and Mosquitto, tapping
// continuously through pcscd + vpcd, with random kill -9 of devices, the server and the broker, and
// network cuts (black hole / reset) between devices and the broker; then reconciliation (test/bench/soak-run.ts).
// Needs `npm run build` (dist/). Last line: one JSON object; exit 1 when a tap was lost or duplicated,
// a list was mixed or an integrity check failed.
import { loadavg } from 'node:os';
import { runSoak } from './soak-run.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const minutes = arg('minutes', 10);
const devices = arg('devices', 20);
const t0 = Date.now();
const r = await runSoak({
  devices,
  seconds: Math.round(minutes * 60),
  chaosEveryMs: arg('chaos-ms', 3000),
  keep: process.argv.includes('--keep'),
  log: (l) => process.stderr.write(`[soak +${Math.round((Date.now() - t0) / 1000)}s] ${l}\n`),
});
const load = r.load.length ? Math.round((r.load.reduce((a, b) => a + b, 0) / r.load.length) * 10) / 10 : null;
console.log(
  `soak: ${devices} devices, ${minutes} min of chaos: ${r.taps} taps (${r.onServer} on the server), kills ${JSON.stringify(r.kills)}, cuts ${JSON.stringify(r.cuts)}, ` +
    `${r.listVersions} stop-list versions (${r.importsRefused} imports refused while the server was down), ${r.slowRestarts} restarts retried; lost ${r.lost}, duplicated ${r.duplicated}, phantom ${r.phantom}, mixed lists ${r.mixedLists}, integrity ${r.integrity}; ` +
    `load average ${load} (now ${loadavg()[0]!.toFixed(1)}) on ${(await import('node:os')).cpus().length} cores`,
);
for (const p of r.problems.slice(0, 20)) console.log(`problem: ${p}`);
console.log(JSON.stringify({ ...r, loadAvg: load, load: undefined, problems: r.problems.length }));
process.exitCode = r.lost || r.duplicated || r.phantom || r.mixedLists || r.integrity !== 'ok' ? 1 : 0;
