/**
 * npm run bench:import [-- --rows N]   (default 1,000,000)
 *
 * A card import of N rows into a fresh server while /v1/health is polled every
 * 50 ms and a device sends one journal entry every 100 ms over MQTT (latency to
 * the signed ack). Prints p50/p99/max of both and the event-loop delay; fails
 * (exit 1) when a p99 is over 100 ms. The last line is one JSON object.
 */
import { measureDuringImport } from '../support/import-load.js';
import { startStack } from '../support/sync-harness.js';

const i = process.argv.indexOf('--rows');
const rows = i > 0 ? Number(process.argv[i + 1]) : 1_000_000;
const stack = await startStack('embedded');
try {
  const r = await measureDuringImport(stack, rows);
  const ok = r.health.p99 <= 100 && r.journal.p99 <= 100;
  console.log(JSON.stringify({ ...r, ok }));
  process.exitCode = ok ? 0 : 1;
} finally {
  await stack.close();
}
