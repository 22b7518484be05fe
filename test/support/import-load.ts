/**
 * Responsiveness of the sync-server during a big import (issue 13 item 3):
 * while `rows` cards are imported, GET /v1/health every 50 ms and one tap
 * every 100 ms on a connected device whose journal batch goes over MQTT
 * (latency: tap committed → the server's signed ack back on the device).
 * Also the server's event-loop delay. Used by the integration test and by
 * `npm run bench:import`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { cardsCsv, tokenOf } from './registry-csv.js';
import { busConfig, importText, openDevice, tap, type Stack } from './sync-harness.js';

export interface Latencies {
  n: number;
  p50: number;
  p99: number;
  max: number;
}
export interface ImportLoad {
  rows: number;
  importMs: number;
  health: Latencies;
  journal: Latencies;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
}

function stats(xs: number[]): Latencies {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { n: s.length, p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), max: Math.round(s[s.length - 1] ?? NaN) };
}

export async function measureDuringImport(stack: Stack, rows: number): Promise<ImportLoad> {
  const csv = cardsCsv(0, rows); // built before the clock starts
  const dev = openDevice(stack, 'load-dev', ['stoplist']);
  const cfg = busConfig('load-dev');
  const health: number[] = [];
  const journal: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let running = true;
  const healthLoop = (async () => {
    while (running) {
      const t = performance.now();
      const r = await fetch(`${stack.server.httpUrl}/v1/health`);
      await r.arrayBuffer();
      health.push(performance.now() - t);
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  let at = Date.parse('2026-11-24T09:00:00+03:00');
  const journalLoop = (async () => {
    while (running) {
      const t = performance.now();
      const seq = tap(dev, cfg, tokenOf(rows + 1), (at += 60_000)).entry.seq;
      dev.client.notify();
      while (dev.store.ackedSeq() < seq && performance.now() - t < 30_000) await new Promise((res) => setTimeout(res, 2));
      journal.push(performance.now() - t);
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  try {
    await new Promise((res) => setTimeout(res, 500)); // the device connected, the loops going
    health.length = 0; // only what happened during the import
    journal.length = 0;
    loop.enable();
    const t0 = performance.now();
    await importText(stack, 'cards', csv);
    const importMs = performance.now() - t0;
    loop.disable();
    running = false;
    await Promise.all([healthLoop, journalLoop]);
    return {
      rows,
      importMs: Math.round(importMs),
      health: stats(health),
      journal: stats(journal),
      eventLoopP99Ms: Math.round(loop.percentile(99) / 1e6),
      eventLoopMaxMs: Math.round(loop.max / 1e6),
    };
  } finally {
    running = false;
    await dev.close();
  }
}
