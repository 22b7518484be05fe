/**
 * Issue 13 item 3: an import does not block the server's event loop. During a
 * 100k-row card import (parse, registry, lists in a worker thread), /v1/health
 * and journal ingest over MQTT keep answering. The figures are printed; the
 * 1,000,000-row version with the ≤ 100 ms bound is `npm run bench:import`.
 * The bound here is looser (500 ms p99) because this machine runs several
 * suites at once on 2 cores: a p99 over ~100 samples is one stall of the
 * runner, not of the server. Before the worker the loop was blocked for the
 * whole import (seconds).
 *
 * Known open (issue 13 item 3, not done): journal ingest still stalls while
 * the worker holds the registry's write lock (its registry transaction and the
 * lists' commit are each one transaction, for atomicity): the main thread's
 * ingest write waits for it synchronously (measured: one ack 2.2 s late during
 * a 100k import). The bench asserts the target (p99 ≤ 100 ms for both); here
 * ingest is only required to answer every batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureDuringImport } from '../support/import-load.js';
import { startStack, type Stack } from '../support/sync-harness.js';

const ROWS = Number(process.env.RC_IMPORT_ROWS ?? 100_000);

describe('import responsiveness', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('embedded');
  });
  afterAll(async () => {
    await stack?.close();
  });

  it(`during a ${ROWS}-row import, /v1/health keeps answering and every journal batch is acknowledged`, async () => {
    const r = await measureDuringImport(stack, ROWS);
    console.log(`import-responsive ${JSON.stringify(r)}`);
    expect(stack.server.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(ROWS);
    expect(r.health.n).toBeGreaterThan(5);
    expect(r.journal.n).toBeGreaterThan(3);
    expect(r.health.p99).toBeLessThanOrEqual(500);
    expect(r.journal.max).toBeLessThan(30_000); // every tap acknowledged (the wait gives up at 30 s)
  }, 300_000);
});
