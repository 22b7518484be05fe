import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createPeripheral } from '../../device/io/factory.js';
import { isTurnstile, type Turnstile } from '../../device/io/types.js';
import { createLogger } from '../../protocol/log.js';
import { createPtyPair, type PtyPair } from '../rig/pty.js';
import { SerialEndpoint } from '../sim/endpoint.js';
import { ioPeripheralsSuite, type IoRig } from '../suites/io-peripherals.suite.js';

const log = createLogger({ level: process.env.RC_TEST_LOG ?? 'silent' });

/** A real pty pair from socat: the driver on one end, the simulator (real serialport) on the other. */
const ptyRig: IoRig = {
  name: 'socat pty pair',
  timing: { ackTimeoutMs: 150 },
  async line() {
    const pty = await createPtyPair();
    const endpoint = new SerialEndpoint(pty.b, 115200, 20);
    return {
      port: pty.a,
      endpoint,
      simReady: () => endpoint.opened(),
      unplug: () => pty.remove(),
      replug: () => pty.recreate(),
      close: async () => {
        await endpoint.close();
        await pty.close();
      },
    };
  },
};

describe(`peripherals over rcp1 (${ptyRig.name})`, () => ioPeripheralsSuite(ptyRig));

describe('a pty removed while nobody holds its other end', () => {
  let pty: PtyPair | undefined;
  let gate: Turnstile | undefined;
  afterAll(async () => {
    await gate?.stop();
    await pty?.close();
  });

  // Seen here: a pty slave opened with nothing on the other side and no traffic got no EIO when
  // socat went away. The driver notices by its read error or, failing that, by watching the path.
  it('the driver still notices, reports down, and re-opens the recreated pty', async () => {
    pty = await createPtyPair();
    const p = createPeripheral(
      { kind: 'turnstile', port: pty.a, timing: { ackTimeoutMs: 50, retries: 0, reconnectMinMs: 20, reconnectMaxMs: 100, portCheckMs: 50, keepaliveMs: 0 } },
      { log },
    );
    if (!isTurnstile(p)) throw new Error('not a turnstile');
    gate = p;
    await gate.start();
    await until(() => gate?.health().portOpen === true, 5000, 'port open');
    await pty.remove();
    await until(() => gate?.health().portOpen === false, 2000, 'port noticed gone');
    expect(gate.health()).toMatchObject({ status: 'down', lastError: { code: 'io.port-unavailable' } });
    await pty.recreate();
    await until(() => gate?.health().portOpen === true, 5000, 'port re-opened');
    expect(gate.health().counters.reconnects).toBe(1);
  });
});

describe('turnstile simulator as a separate process (as the end-to-end tests run it)', () => {
  let pty: PtyPair | undefined;
  let sim: SimProcess | undefined;
  let gate: Turnstile | undefined;

  afterAll(async () => {
    await gate?.stop();
    await sim?.stop();
    await pty?.close();
  });

  it('receives the open command and reports passage; killed mid-command and restarted, the driver recovers', async () => {
    pty = await createPtyPair();
    sim = await startTurnstileSim(pty.b);
    const p = createPeripheral(
      {
        kind: 'turnstile',
        port: pty.a,
        baudRate: 115200,
        timing: { ackTimeoutMs: 150, retries: 2, passWindowMs: 500, reconnectMinMs: 20, reconnectMaxMs: 200, portCheckMs: 50, keepaliveMs: 0 },
      },
      { log },
    );
    if (!isTurnstile(p)) throw new Error('not a turnstile');
    gate = p;
    await gate.start();
    await until(() => gate?.health().status === 'ok', 5000, 'gate ok');
    // the simulator announces its start (BOOT) and retransmits it until our driver acknowledges
    await sim.waitFor((m) => m.type === 'event' && m.event?.type === 'boot' && m.acked === true, 'acknowledged BOOT');

    expect(await gate.openForEntry()).toBe('passed');
    await sim.waitFor((m) => m.type === 'event' && m.event?.type === 'passed' && m.acked === true, 'acknowledged PASSED');
    expect(sim.lines.filter((m) => m.type === 'command' && m.command?.type === 'open')).toEqual([
      { type: 'command', seq: expect.any(Number), command: { type: 'open', direction: 'entry', windowMs: 500 }, executed: true },
    ]);

    // steer it over stdin: it stops answering
    sim.send({ behaviour: 'silent' });
    await sim.waitFor((m) => m.type === 'behaviour', 'behaviour change');
    expect(await gate.close()).toBe(false);
    expect(gate.health().lastError?.code).toBe('io.no-ack');

    // killed in the middle of a command: the open resolves not-passed, nothing hangs
    sim.send({ behaviour: 'normal' });
    await sim.waitFor((m) => m.type === 'behaviour' && m.behaviour?.mode === 'normal', 'behaviour normal');
    sim.send({ behaviour: 'never-passes' });
    await sim.waitFor((m) => m.type === 'behaviour' && m.behaviour?.mode === 'never-passes', 'behaviour never-passes');
    const pending = gate.openForEntry();
    await sim.waitFor((m) => m.type === 'command' && m.command?.type === 'open' && m.command.direction === 'entry' && sim!.lines.filter((x) => x.type === 'command' && x.command?.type === 'open').length === 2, 'second OPEN');
    sim.kill();
    expect(await pending).toBe('not-passed');

    sim = await startTurnstileSim(pty.b);
    await sim.waitFor((m) => m.type === 'event' && m.event?.type === 'boot' && m.acked === true, 'acknowledged BOOT after restart');
    expect(gate.state).toBe('unknown'); // the driver learnt the controller restarted
    expect(await gate.openForEntry()).toBe('passed');
    expect(gate.health().status).toBe('ok');
  });
});

interface SimLine {
  type: string;
  seq?: number;
  command?: { type: string; direction?: string };
  event?: { type: string };
  acked?: boolean;
  behaviour?: { mode: string };
}

interface SimProcess {
  lines: SimLine[];
  send(o: unknown): void;
  waitFor(pred: (m: SimLine) => boolean, what: string): Promise<void>;
  kill(): void;
  stop(): Promise<void>;
}

async function startTurnstileSim(port: string): Promise<SimProcess> {
  const script = fileURLToPath(new URL('../sim/turnstile-sim.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', port, '--baud', '115200', '--pass-delay-ms', '30'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const lines: SimLine[] = [];
  const watchers = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(JSON.parse(l) as SimLine);
    for (const w of [...watchers]) w();
  });
  const waitFor = (pred: (m: SimLine) => boolean, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (lines.some(pred)) {
          watchers.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        watchers.delete(check);
        reject(new Error(`simulator process: timed out waiting for ${what}; saw ${JSON.stringify(lines)}`));
      }, 10_000);
      watchers.add(check);
      check();
    });
  const proc: SimProcess = {
    lines,
    send: (o) => child.stdin!.write(`${JSON.stringify(o)}\n`),
    waitFor,
    kill: () => {
      child.kill('SIGKILL');
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  await waitFor((m) => m.type === 'ready', 'ready');
  return proc;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
