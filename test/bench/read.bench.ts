/**
 * npm run bench:read [-- N]: read a plain Mir card N times (default 200)
 * through the real stack: a private pcscd (TCP_NODELAY shim ON) with vpcd,
 * the virtual card in a child process, the device's PcscReaderSource and
 * readMirCard. Then a few reads with the shim OFF, for comparison.
 * Prints figures; the LAST line is one JSON object
 * {"apdusPerRead":…, "medianMs":…, "p95Ms":…} (shim on).
 */
import { performance } from 'node:perf_hooks';
import { readMirCard } from '../../device/emv/read.js';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { pcscdCardRig } from '../support/rig/pcscd-card-rig.js';

const N = Number(process.argv[2] ?? process.env.BENCH_READS ?? 200);
const N_NAGLE = Number(process.env.BENCH_READS_NO_SHIM ?? 10);
const SHIM = process.env.BENCH_CHILD_NO_SHIM !== '1';
const SPEC = { kind: 'emv', pan: '2200123456789019', expiry: '2028-12', psn: '01' } as const;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const r2 = (x: number) => Math.round(x * 100) / 100;

async function run(reads: number, nodelay: boolean): Promise<{ times: number[]; apdus: number[] }> {
  const rig = pcscdCardRig({ nodelay, log: createLogger({ level: 'warn' }) });
  await rig.setup();
  try {
    const ch = await rig.present(SPEC);
    const now = new Date();
    const times: number[] = [];
    const apdus: number[] = [];
    for (let i = 0; i < 3; i++) await readMirCard(ch, { now, tokenKey: DEV_TOKEN_KEY }); // warm-up
    for (let i = 0; i < reads; i++) {
      const t0 = performance.now();
      const r = await readMirCard(ch, { now, tokenKey: DEV_TOKEN_KEY });
      times.push(performance.now() - t0);
      apdus.push(r.apdus);
    }
    await rig.remove();
    return { times: times.sort((a, b) => a - b), apdus };
  } finally {
    await rig.teardown();
  }
}

const on = await run(N, SHIM);
const medianMs = r2(pct(on.times, 50));
const p95Ms = r2(pct(on.times, 95));
const apdusPerRead = Math.max(...on.apdus);
console.log(
  `read.bench: ${N} reads of a plain Mir card through real pcscd + vpcd, TCP_NODELAY shim ${SHIM ? 'ON' : 'OFF'} (card stays in the field; each read is the whole EMV conversation: PPSE, SELECT, GPO, READ RECORDs)`,
);
console.log(`  APDUs per read: ${apdusPerRead} (target <= 6)`);
console.log(
  `  per read: median ${medianMs} ms, p95 ${p95Ms} ms, min ${r2(on.times[0]!)} ms, max ${r2(on.times[on.times.length - 1]!)} ms (target median <= 5 ms)`,
);
console.log(`  per APDU: median ${r2(medianMs / apdusPerRead)} ms`);
if (N_NAGLE > 0 && SHIM) {
  // a second pcscd in the same process: libpcsclite caches the socket path, so run it in a child
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  {
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), String(N_NAGLE)], {
      env: { ...process.env, BENCH_CHILD_NO_SHIM: '1', BENCH_READS_NO_SHIM: '0' },
      encoding: 'utf8',
    });
    const last = child.stdout.trim().split('\n').pop() ?? '{}';
    try {
      const j = JSON.parse(last) as { medianMs: number };
      console.log(`  for comparison, shim OFF (Nagle + delayed ACK on vpcd's two-write frames): ${N_NAGLE} reads, median ${j.medianMs} ms per read`);
    } catch {
      console.log(`  (comparison run without the shim failed: ${child.stderr.slice(-300)})`);
    }
  }
}
console.log(JSON.stringify({ apdusPerRead, medianMs, p95Ms }));
