// npm run bench:io — RCP/1 over a real socat pty pair, the turnstile simulator
// in its own process (as a controller would be), 115200 baud:
//   - SHOW round trip: display.show() called → ACK received (frame with
//     Cyrillic text, ~60 bytes);
//   - OPEN round trip: turnstile.openForEntry() called → ACK received;
//   - passage: openForEntry() → PASSED reported (simulator passes at once).
// Software and pty latency only; a real 19200-baud line adds ~4 ms per
// 70-byte frame on the wire. Last line: one JSON object.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createPeripheral } from '../../device/io/factory.js';
import { isDisplay, isTurnstile } from '../../device/io/types.js';
import { createLogger } from '../../protocol/log.js';
import { createPtyPair } from '../support/rig/pty.js';

const N = Number(process.env.BENCH_N ?? 300);
const log = createLogger({ level: 'silent' });

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN).toFixed(3));
}

async function startSim(script: string, port: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', port, '--baud', '115200', '--pass-delay-ms', '0'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('simulator did not start')), 15_000);
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.includes('"acked"') && l.includes('"boot"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const simDir = fileURLToPath(new URL('../support/sim/', import.meta.url));
const gatePty = await createPtyPair();
const displayPty = await createPtyPair();
const stops: Array<() => Promise<void>> = [() => gatePty.close(), () => displayPty.close()];
try {
  const timing = { keepaliveMs: 0, ackTimeoutMs: 150, passWindowMs: 5000 };
  const gate = createPeripheral({ kind: 'turnstile', port: gatePty.a, baudRate: 115200, timing }, { log });
  const display = createPeripheral({ kind: 'display', port: displayPty.a, baudRate: 115200, timing }, { log });
  if (!isTurnstile(gate) || !isDisplay(display)) throw new Error('factory');
  stops.unshift(
    () => gate.stop(),
    () => display.stop(),
  );
  await gate.start();
  await display.start();
  const gateSim = await startSim(`${simDir}turnstile-sim.ts`, gatePty.b);
  const displaySim = await startSim(`${simDir}display-sim.ts`, displayPty.b);
  stops.unshift(
    () => gateSim.stop(),
    () => displaySim.stop(),
  );

  const show: number[] = [];
  const openAck: number[] = [];
  const passage: number[] = [];
  let failures = 0;
  // warm-up
  for (let i = 0; i < 20; i++) await display.show({ text: 'Проезд льготный — 0 ₽\nBenefit fare — 0 RUB', light: 'green', beep: 'short' });
  const retries0 = gate.health().counters.retries + display.health().counters.retries; // not the start-up PINGs sent before the simulators ran
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const ok = await display.show({ text: `Проезд льготный — 0 ₽\nBenefit fare — 0 RUB #${i}`, light: i % 2 ? 'green' : 'red', beep: 'short' });
    show.push(performance.now() - t0);
    if (!ok) failures++;
  }
  let acked = 0;
  const off = gate.onEvent((e) => {
    if (e.type === 'state' && e.state === 'open-entry') acked = performance.now();
  });
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const outcome = await gate.openForEntry();
    passage.push(performance.now() - t0);
    openAck.push(acked - t0);
    if (outcome !== 'passed') failures++;
  }
  off();
  const retries = gate.health().counters.retries + display.health().counters.retries - retries0;
  console.log(`RCP/1 over socat pty, 115200 baud, simulator in a child process, ${N} commands each`);
  console.log(`SHOW → ACK       p50 ${pct(show, 50)} ms   p99 ${pct(show, 99)} ms`);
  console.log(`OPEN → ACK       p50 ${pct(openAck, 50)} ms   p99 ${pct(openAck, 99)} ms`);
  console.log(`OPEN → PASSED    p50 ${pct(passage, 50)} ms   p99 ${pct(passage, 99)} ms`);
  console.log(`retries ${retries}, failures ${failures}`);
  console.log(
    JSON.stringify({
      commands: N,
      showP50Ms: pct(show, 50),
      showP99Ms: pct(show, 99),
      p50Ms: pct(openAck, 50),
      p99Ms: pct(openAck, 99),
      passP50Ms: pct(passage, 50),
      passP99Ms: pct(passage, 99),
      retries,
      failures,
    }),
  );
} finally {
  for (const s of stops) await s().catch(() => undefined);
}
