import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Behaviour } from './rcp1-peer.js';

/** One line of a simulator's stdout (see test/support/sim/cli.ts). */
export interface SimLine {
  type: 'ready' | 'port' | 'command' | 'event' | 'behaviour' | 'error' | string;
  seq?: number;
  open?: boolean;
  command?: { type: string; direction?: string; windowMs?: number; on?: boolean; text?: string; light?: string; beep?: string };
  executed?: boolean;
  event?: { type: string; direction?: string; detail?: number };
  acked?: boolean;
  behaviour?: { mode: string; n?: number };
  message?: string;
}

export interface SimProcess {
  readonly pid: number | undefined;
  /** Everything it printed so far. */
  readonly lines: SimLine[];
  /** Steers it: setBehaviour({ mode: 'silent' }), tamper(1). */
  setBehaviour(b: Behaviour): void;
  tamper(detail: number): void;
  /** Resolves when some printed line (past or future) matches. */
  waitFor(pred: (m: SimLine) => boolean, what: string, timeoutMs?: number): Promise<SimLine>;
  /** Commands it executed (retries excluded), in order. */
  commands(type?: string): NonNullable<SimLine['command']>[];
  /** SIGKILL: a controller that dies mid-command. */
  kill(): void;
  /** SIGTERM and wait for the exit; safe to call twice. Call it in afterAll. */
  stop(): Promise<void>;
}

export interface StartSimOptions {
  baudRate?: number;
  passDelayMs?: number;
  behaviour?: Behaviour['mode'];
  /** Wait until the simulator's BOOT was acknowledged by a driver on the other end (default false: only until its port is open). */
  waitForDriver?: boolean;
}

/**
 * Starts test/support/sim/turnstile-sim.ts or display-sim.ts as a separate process on
 * a serial port (e.g. the b end of test/support/rig/pty.ts), resolved once it is
 * ready. For end-to-end tests: the device under test opens the other end.
 */
export async function startSimProcess(kind: 'turnstile' | 'display', port: string, opts: StartSimOptions = {}): Promise<SimProcess> {
  const script = fileURLToPath(new URL(`./${kind}-sim.ts`, import.meta.url));
  const args = ['--import', 'tsx', script, '--port', port, '--baud', String(opts.baudRate ?? 19200)];
  if (opts.passDelayMs !== undefined) args.push('--pass-delay-ms', String(opts.passDelayMs));
  if (opts.behaviour) args.push('--behaviour', opts.behaviour);
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const lines: SimLine[] = [];
  const watchers = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as SimLine);
    } catch {
      lines.push({ type: 'error', message: l });
    }
    for (const w of [...watchers]) w();
  });
  child.once('exit', () => {
    for (const w of [...watchers]) w();
  });
  const send = (o: unknown): void => {
    if (child.stdin.writable) child.stdin.write(`${JSON.stringify(o)}\n`);
  };
  const waitFor = (pred: (m: SimLine) => boolean, what: string, timeoutMs = 10_000): Promise<SimLine> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = lines.find(pred);
        if (hit) {
          done();
          resolve(hit);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(new Error(`${kind} simulator exited while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${kind} simulator: timed out waiting for ${what}; it printed ${JSON.stringify(lines.slice(-20))}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        watchers.delete(check);
      };
      watchers.add(check);
      check();
    });
  const proc: SimProcess = {
    pid: child.pid,
    lines,
    setBehaviour: (b) => send(b.mode === 'nak-first' || b.mode === 'ack-lost' ? { behaviour: b.mode, n: b.n } : { behaviour: b.mode }),
    tamper: (detail) => send({ tamper: detail }),
    waitFor,
    commands: (type) =>
      lines.filter((m) => m.type === 'command' && m.executed === true && m.command && (type === undefined || m.command.type === type)).map((m) => m.command!),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
  try {
    await waitFor((m) => m.type === 'ready', 'ready', 20_000);
    if (opts.waitForDriver) await waitFor((m) => m.type === 'event' && m.event?.type === 'boot' && m.acked === true, 'BOOT acknowledged by the driver', 20_000);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return proc;
}
