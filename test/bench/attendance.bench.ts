// npm run bench:attendance [-- --students 1000] [--runs 5]
//
// The attendance report of one school for a month (target ≤ 1 s for 1,000
// students): a real registry (SQLite file) with 1,000 cards, the roster and the
// published school rules, a month of gate passages (two a student a school day,
// ~33,000 entries) ingested as journal batches, then `build` timed over several
// runs; the HTML and PDF renderings of the document are timed too.
// Last line: one JSON object.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { build } from '../../sync-server/reports/attendance.js';
import { render } from '../../sync-server/reports/render/index.js';
import { monthOfGateTaps, rosterOf, schoolRegistry, uploadSchool } from '../support/school-journal.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const STUDENTS = arg('students', 1000);
const RUNS = arg('runs', 5);

const t0 = performance.now();
const reg = await schoolRegistry(STUDENTS, rosterOf(STUDENTS));
const taps = monthOfGateTaps(STUDENTS);
uploadSchool(reg, taps);
const setupMs = performance.now() - t0;
console.log(`registry: ${STUDENTS} students, ${taps.length} gate entries ingested in ${(setupMs / 1000).toFixed(1)} s`);
try {
  const times: number[] = [];
  const cpu: number[] = [];
  let rows = 0;
  let doc = build(reg.db, { school: 'S1', month: '2026-11' }); // warm-up (statement cache, tz formatter)
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    const c = process.cpuUsage();
    doc = build(reg.db, { school: 'S1', month: '2026-11' });
    times.push(performance.now() - s);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1000);
    rows = doc.sections.reduce((t, x) => t + x.rows.length, 0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  const max = times[times.length - 1] ?? 0;
  cpu.sort((a, b) => a - b);
  const cpuMedian = cpu[Math.floor(cpu.length / 2)] ?? 0;
  console.log(`attendance build: median ${median.toFixed(0)} ms, max ${max.toFixed(0)} ms over ${RUNS} runs (${rows} rows; target ≤ 1000 ms)`);
  console.log(
    `  CPU time of one build (this process, less sensitive to a loaded machine): median ${cpuMedian.toFixed(0)} ms; load average ${loadavg()[0]?.toFixed(1)}`,
  );
  let s = performance.now();
  const html = await render(doc, 'html');
  const htmlMs = performance.now() - s;
  s = performance.now();
  const pdf = await render(doc, 'pdf');
  const pdfMs = performance.now() - s;
  console.log(`render: html ${htmlMs.toFixed(0)} ms (${html.length} B), pdf ${pdfMs.toFixed(0)} ms (${pdf.length} B)`);
  console.log(
    JSON.stringify({
      bench: 'attendance',
      students: STUDENTS,
      entries: taps.length,
      buildMedianMs: Math.round(median),
      buildMaxMs: Math.round(max),
      buildCpuMedianMs: Math.round(cpuMedian),
      loadAverage: Number(loadavg()[0]?.toFixed(1)),
      htmlMs: Math.round(htmlMs),
      pdfMs: Math.round(pdfMs),
      ok: max <= 1000,
    }),
  );
} finally {
  reg.close();
}
