/**
 * npm run bench:import-responsive [-- --rows N] [--every MS] [--server-root DIR] [--database postgres]
 *
 * Issue 12 figure: the server stays responsive during a 1,000,000-row import. A sync-server runs in a
 * child process (rc-sync-server start); a cards file of N rows (default 1,000,000) is uploaded through
 * POST /v1/import/cards; meanwhile GET /v1/health is timed every 50 ms, and a harness device taps every
 * 200 ms and times each journal upload until the server's signed ack. Idle figures are taken first.
 * The acks are split by the import's phases as the server logs them (parse, wait, apply, lists, publish;
 * since issue 13 item 3 parse to lists run in the import's worker thread, sync-server/import-thread.ts).
 * Target: health and ack p99 <= 100 ms during the import. `--server-root` runs the server of another checkout
 * (e.g. one before the staged imports) under the same conditions. `--database postgres` keeps the registry in a
 * private PostgreSQL 15 the bench starts (test/support/rig/postgres.ts) and stops. The last line is one JSON object.
 */
import { operatorFetch } from '../support/operator-api.js';
import { ackProbe, cardsFile, percentiles, postFile, startServerChild, timeEvery } from '../support/import-probe.js';
import { startPostgres, type PgServer } from '../support/rig/postgres.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const ROWS = Number(arg('rows', '1000000'));
const EVERY = Number(arg('every', '50'));
const DATABASE = arg('database', 'sqlite');
if (DATABASE !== 'sqlite' && DATABASE !== 'postgres') throw new Error(`--database sqlite or postgres, not ${DATABASE}`);

/** The phases of the import as the server logged them ('import applied' at info level), in order. */
function importPhases(log: string): Record<string, number> | null {
  for (const line of log.split('\n').reverse()) {
    if (!line.includes('import applied')) continue;
    try {
      const ms = (JSON.parse(line) as { ms?: Record<string, number> }).ms;
      if (ms) return ms;
    } catch {
      // not a JSON log line
    }
  }
  return null;
}

const file = cardsFile(ROWS);
console.log(`cards file: ${ROWS} rows, ${(file.length / 1e6).toFixed(1)} MB`);
const root = arg('server-root', '');
process.env.RC_LOG_LEVEL ??= 'info'; // the child logs the import's phases at info
const pg: PgServer | null = DATABASE === 'postgres' ? await startPostgres() : null;
const server = await startServerChild(root || undefined, pg ? ['--database', pg.createDatabase()] : []).catch(async (e: unknown) => {
  await pg?.stop();
  throw e;
});
try {
  const target = { httpUrl: server.httpUrl, dataDir: server.dataDir };
  const health = async () => {
    const r = await operatorFetch(target, '/v1/health');
    if (!r.ok) throw new Error(`health: HTTP ${r.status}`);
    await r.arrayBuffer();
  };
  // idle
  let h = timeEvery(EVERY, health);
  let acks = ackProbe(server, 200);
  await new Promise((r) => setTimeout(r, 3000));
  const idleHealth = percentiles(await h.stop());
  const idleAcks = percentiles(await acks.stop());
  console.log(`idle:   health ${JSON.stringify(idleHealth)} ms, journal ack ${JSON.stringify(idleAcks)} ms`);

  // during the import
  h = timeEvery(EVERY, health);
  acks = ackProbe(server, 200);
  let lastProgress = '';
  const progress = timeEvery(1000, async () => {
    const r = await operatorFetch(target, '/v1/imports?limit=1');
    if (!r.ok) return void (await r.arrayBuffer()); // a server without GET /v1/imports (--server-root)
    const [i] = (await r.json()) as { state: string; rows: number }[];
    if (i) lastProgress = `${i.state} ${i.rows}`;
  });
  const t0 = performance.now();
  const res = await postFile(target, '/v1/import/cards', file);
  const answer = res.json as { report?: { rows: number; applied: number }; error?: unknown };
  const importMs = Math.round(performance.now() - t0);
  if (res.status !== 200 || answer.report?.applied !== ROWS) throw new Error(`import failed: HTTP ${res.status} ${JSON.stringify(answer).slice(0, 500)}`);
  const healthErrors = h.errors;
  const duringHealth = percentiles(await h.stop());
  const duringAcks = percentiles(await acks.stop());
  await progress.stop();
  console.log(
    `import: ${ROWS} card rows through HTTP (upload, validate, tokenise, stage, apply, new list version, publish): ${importMs} ms (imports page said: ${lastProgress})`,
  );
  console.log(`during: health ${JSON.stringify(duringHealth)} ms, journal ack ${JSON.stringify(duringAcks)} ms`);
  if (healthErrors.length) console.log(`health probes that failed: ${healthErrors.length} (${healthErrors.slice(0, 3).join('; ')})`);
  // where the slow acks fall: the server logs each phase's duration ('import applied', ms: parse, wait, apply, lists)
  const phases = importPhases(server.output());
  const byPhase: Record<string, ReturnType<typeof percentiles>> = {};
  if (phases) {
    let from = t0;
    for (const [name, ms] of Object.entries(phases)) {
      const to = from + ms;
      byPhase[name] = percentiles(acks.samples.filter((s) => s.at >= from && s.at < to).map((s) => s.ms));
      from = to;
    }
    console.log(
      `journal ack by import phase: ${Object.entries(byPhase)
        .map(([k, v]) => `${k} (${phases[k]} ms) ${JSON.stringify(v)}`)
        .join('; ')}`,
    );
  }
  console.log(
    `target: health p99 <= 100 ms: ${duringHealth.p99 <= 100 ? 'met' : 'NOT met'}; journal ack p99 <= 100 ms: ${duringAcks.p99 <= 100 ? 'met' : 'NOT met'}`,
  );
  console.log(
    JSON.stringify({
      bench: 'import-responsive',
      server: root || 'this checkout',
      database: DATABASE,
      rows: ROWS,
      importMs,
      healthEveryMs: EVERY,
      idle: { health: idleHealth, ack: idleAcks },
      during: { health: duringHealth, healthErrors: healthErrors.length, ack: duringAcks },
      ...(phases ? { phases, ackByPhase: byPhase } : {}),
      targetMet: duringHealth.p99 <= 100,
      ackTargetMet: duringAcks.p99 <= 100,
    }),
  );
} catch (e) {
  console.error(`server output (tail):\n${server.output().slice(-3000)}`);
  throw e;
} finally {
  await server.stop();
  await pg?.stop();
}
