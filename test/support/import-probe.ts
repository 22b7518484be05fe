/**
 * What an operator and a device see of the server while a big import runs (issue 12 figure): a sync-server
 * in a child process (`rc-sync-server start` through tsx, so its event loop is its own), a CSV upload through
 * the HTTP API, GET /v1/health timed every few tens of milliseconds, and the ack latency of journal uploads
 * from a harness device. Used by test/bench/import-responsive.bench.ts and test/integration/import-responsive.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { operatorFetch, type OperatorTarget } from './operator-api.js';
import { syntheticPan, syntheticPsn } from './pans.js';
import { busConfig, openDevice, stackOf, tap, type Device } from './sync-harness.js';
import { testDatabaseArgs } from './test-db.js';
import { waitFor } from './wait.js';

export interface ServerChild {
  dataDir: string;
  httpUrl: string;
  mqttUrl: string;
  publicKeyPem: string;
  /** Everything the child wrote (its log), for a failure message. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * `rc-sync-server start` on a fresh data dir, embedded broker and HTTP on free ports. `root`: the checkout
 * whose server runs (default this one; another checkout gives a before/after under the same load); `args`: more
 * options of `start` (`--database URL`).
 */
export async function startServerChild(root = join(import.meta.dirname, '..', '..'), args: readonly string[] = []): Promise<ServerChild> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rc-import-probe-'));
  const proc: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'sync-server/cli.ts',
      'start',
      '--data',
      dataDir,
      '--mqtt-port',
      '0',
      '--http-port',
      '0',
      '--dev-token-key',
      '--allow-anonymous-devices',
      ...args,
      ...testDatabaseArgs(['--data', dataDir, ...args]),
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RC_LOG_LEVEL: process.env.RC_LOG_LEVEL ?? 'warn' } },
  );
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  proc.stderr!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => /HTTP (http:\/\/\S+), data/.test(out) || proc.exitCode !== null, { timeoutMs: 60_000, what: `server child up: ${out.slice(-500)}` });
    const m = /MQTT (mqtt:\/\/\S+?)(?:,| \()[\s\S]*HTTP (http:\/\/\S+?), data/.exec(out);
    if (!m) throw new Error(`server child did not start: ${out.slice(-2000)}`);
    const mqttUrl = m[1]!;
    const httpUrl = m[2]!;
    const key = (await (await operatorFetch({ httpUrl, dataDir }, '/v1/public-key')).json()) as { pem: string };
    return { dataDir, httpUrl, mqttUrl, publicKeyPem: key.pem, output: () => out, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * POST a big file and wait for the answer however long the import takes (fetch gives up on an answer after
 * 300 s of waiting for its headers). The credentials are the ones operatorFetch sends, so this keeps working
 * once every route needs them.
 */
export async function postFile(target: OperatorTarget, path: string, body: Buffer): Promise<{ status: number; json: unknown }> {
  const orig = globalThis.fetch;
  let headers = new Headers();
  globalThis.fetch = (async (_url: unknown, init?: RequestInit) => {
    headers = new Headers(init?.headers);
    return new Response('{}');
  }) as typeof fetch;
  try {
    await operatorFetch(target, path, { method: 'POST', body: 'x', headers: { 'content-type': 'text/csv' } });
  } finally {
    globalThis.fetch = orig;
  }
  const h: Record<string, string> = { 'content-length': String(body.length) };
  headers.forEach((v, k) => (h[k] = v));
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${target.httpUrl}${path}`, { method: 'POST', headers: h }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as unknown }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A cards file of n synthetic rows (never real card numbers). */
export function cardsFile(n: number, expiry = '2031-06'): Buffer {
  const parts: string[] = ['person_id,pan,psn,expiry\n'];
  for (let i = 0; i < n; i++) parts.push(`p${i},${syntheticPan(i)},${syntheticPsn(i)},${expiry}\n`);
  return Buffer.from(parts.join(''), 'utf8');
}

/**
 * Time `probe` every `everyMs` (from the end of one to the start of the next) until stopped; the latencies
 * in ms of the probes that succeeded, and the errors of the others (a probe that throws is counted, not fatal).
 */
export function timeEvery(everyMs: number, probe: () => Promise<void>): { stop(): Promise<number[]>; errors: string[] } {
  const times: number[] = [];
  const errors: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      try {
        await probe();
        times.push(performance.now() - t);
      } catch (e) {
        errors.push(`${Math.round(performance.now() - t)} ms: ${String((e as Error & { cause?: unknown }).cause ?? e)}`);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    errors,
    stop: async () => {
      running = false;
      await loop;
      return times;
    },
  };
}

let probes = 0;

/** A harness device that taps every `everyMs` and times each tap until the server's signed ack covers it (`samples`: when each tap was made, performance.now(), and its latency). */
export function ackProbe(server: ServerChild, everyMs: number): { stop(): Promise<number[]>; samples: { at: number; ms: number }[] } {
  // a device id of its own each time: a second probe under the same id, with a fresh store, would get the first one's
  // ack (beyond its own last entry: refused, so no ack at all until its journal caught up; that was 3 s of "slow acks")
  const id = `probe-dev-${++probes}`;
  const dev: Device = openDevice(stackOf(server), id, ['stoplist']);
  const cfg = busConfig(id);
  const waiting = new Map<number, number>(); // seq -> tapped at
  const times: number[] = [];
  const samples: { at: number; ms: number }[] = [];
  dev.client.on('acked', ({ upTo }: { upTo: number }) => {
    const now = performance.now();
    for (const [seq, at] of waiting)
      if (seq <= upTo) {
        times.push(now - at);
        samples.push({ at, ms: now - at });
        waiting.delete(seq);
      }
  });
  let i = 0;
  const timer = setInterval(() => {
    if (!dev.client.connected) return;
    tap(dev, cfg, syntheticToken(i++), Date.now());
    waiting.set(dev.store.lastSeq(), performance.now());
    dev.client.notify();
  }, everyMs);
  return {
    samples,
    stop: async () => {
      clearInterval(timer);
      // the last taps' acks
      await waitFor(() => waiting.size === 0, { timeoutMs: 10_000, what: 'last acks' }).catch(() => undefined);
      await dev.close();
      rmSync(dev.dir, { recursive: true, force: true });
      return times;
    },
  };
}

function syntheticToken(i: number): string {
  return (0xa0000000 + i).toString(16).padStart(32, '0');
}

export function percentiles(xs: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, p50: r(at(0.5)), p99: r(at(0.99)), max: r(s[s.length - 1] ?? 0) };
}
