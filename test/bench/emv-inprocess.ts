/**
 * In-process EMV read of a plain Mir card (no pcscd): what the card logic
 * itself costs per tap. `npm run bench:emv` — last line one JSON object.
 * (The through-pcscd figure is `npm run bench:read`.)
 */
import { performance } from 'node:perf_hooks';
import { readMirCard } from '../../device/emv/read.js';
import { parseTlv } from '../../device/emv/tlv.js';
import { openInProcessCard } from '../../device/vcard/inprocess.js';
import type { VCardSpec } from '../../device/vcard/spec.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';

const N = Number(process.env.BENCH_N ?? 5000);
const spec: VCardSpec = { kind: 'emv', pan: '2200123456789019', expiry: '2028-12', psn: '01' };

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const now = new Date();
  // warm-up
  for (let i = 0; i < 500; i++) await readMirCard(openInProcessCard(spec), { now, tokenKey: DEV_TOKEN_KEY });
  const times: number[] = [];
  let apdus = 0;
  for (let i = 0; i < N; i++) {
    const ch = openInProcessCard(spec);
    const t0 = performance.now();
    const r = await readMirCard(ch, { now, tokenKey: DEV_TOKEN_KEY });
    times.push(performance.now() - t0);
    apdus = r.apdus;
  }
  times.sort((a, b) => a - b);
  const fci = Buffer.from('6F3B840E325041592E5359532E4444463031A529BF0C2661104F07A00000004210105002434287010161124F07A0000000031010500456495341870102', 'hex');
  const M = 200_000;
  const t1 = performance.now();
  for (let i = 0; i < M; i++) parseTlv(fci);
  const tlvUs = ((performance.now() - t1) / M) * 1000;
  const out = {
    reads: N,
    apdusPerRead: apdus,
    medianMs: Number(quantile(times, 0.5).toFixed(4)),
    p95Ms: Number(quantile(times, 0.95).toFixed(4)),
    maxMs: Number(times[times.length - 1]!.toFixed(4)),
    tlvParsePpseUs: Number(tlvUs.toFixed(3)),
  };
  console.log(`in-process read of a plain Mir card, ${N} reads: median ${out.medianMs} ms, p95 ${out.p95Ms} ms, ${apdus} APDUs`);
  console.log(`strict TLV parse of a 61-byte PPSE answer: ${out.tlvParsePpseUs} µs`);
  console.log(JSON.stringify(out));
}

await main();
