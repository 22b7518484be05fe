/**
 * The programs of a process-level test (`rc-sync-server`, `rc-provision`, `rc-device`, from source through tsx or
 * built in dist/), spawned, run to completion and stopped by one object per test file: whatever it started, its
 * `stopAll()` in `afterAll` ends (SIGTERM, then SIGKILL after a grace), also when a test failed half way.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { testDatabaseArgs } from '../test-db.js';
import { PROJECT_ROOT } from './vcards.js';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export type Program = 'sync-server' | 'provisioning' | 'device';

export interface RunOptions {
  /** Killed (SIGKILL) after this; the run then resolves with what it wrote. */
  timeoutMs?: number;
  /** Each line of stderr as it comes (the technician's prompts). */
  onStderr?: (line: string) => void;
}

/** Ends `c` if it is still running: SIGTERM (or `signal`), SIGKILL after `graceMs`; resolves once it exited. */
export async function stopChild(c: ChildProcess | null | undefined, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill(signal);
  const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export class Procs {
  private readonly live = new Set<ChildProcess>();

  /** `env` is what every program gets (set it in `beforeAll` when it comes from a rig); `dist` runs the built programs. */
  constructor(
    public env: NodeJS.ProcessEnv = { ...process.env },
    private readonly opts: { timeoutMs?: number; graceMs?: number; dist?: boolean } = {},
  ) {}

  /** Node's arguments for `program`: its cli.ts through tsx, or dist/BIN.js. */
  private entry(program: Program): string[] {
    if (!this.opts.dist) return ['--import', 'tsx', join(PROJECT_ROOT, program, 'cli.ts')];
    const bin = { 'sync-server': 'rc-sync-server.js', provisioning: 'rc-provision.js', device: 'rc-device.js' }[program];
    return [join(PROJECT_ROOT, 'dist', bin)];
  }

  /** Keeps `c` for `stopAll()` (a process this file spawned itself: a broker, a device). */
  track<C extends ChildProcess>(c: C): C {
    this.live.add(c);
    c.once('exit', () => this.live.delete(c));
    return c;
  }

  /** Starts `program ARGS` in the background; stdin ignored, stdout piped, stderr as `stderr` says. */
  spawn(program: Program, args: string[], opts: { stderr?: 'ignore' | 'inherit' | 'pipe'; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const stdio: StdioOptions = ['ignore', 'pipe', opts.stderr ?? 'pipe'];
    return this.track(spawn(process.execPath, [...this.entry(program), ...args], { cwd: PROJECT_ROOT, env: opts.env ?? this.env, stdio }));
  }

  /** Runs `program ARGS` to its end, with what it wrote. */
  run(program: Program, args: string[], opts: RunOptions = {}): Promise<Run> {
    const child = this.spawn(program, args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (opts.onStderr) createInterface({ input: child.stderr! }).on('line', opts.onStderr);
    return new Promise((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? this.opts.timeoutMs ?? 60_000);
      child.once('close', (code) => {
        clearTimeout(t);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /**
   * `rc-sync-server ARGS` (`start …`); resolves with the operator API's URL (its "HTTP …" line) and, when `enrol`, the
   * device enrolment listener's (http or https) once it printed both. `onStderr` gets each line of its log.
   */
  async startServer(
    args: string[],
    opts: { enrol?: boolean; stderr?: 'ignore' | 'inherit' | 'pipe'; timeoutMs?: number; onStderr?: (line: string) => void } = {},
  ): Promise<{ child: ChildProcess; httpUrl: string; enrolUrl: string }> {
    // with RC_TEST_DB=postgres the server's registry is a fresh PostgreSQL database (one per --data dir)
    const child = this.spawn('sync-server', [...args, ...(args[0] === 'start' ? testDatabaseArgs(args) : [])], {
      stderr: opts.onStderr ? 'pipe' : (opts.stderr ?? 'ignore'),
    });
    // every line of its log from the first on (the server logs before it prints its URLs)
    if (opts.onStderr) createInterface({ input: child.stderr! }).on('line', opts.onStderr);
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    let httpUrl = '';
    let enrolUrl = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`sync-server did not start: ${err}`)), opts.timeoutMs ?? 30_000);
      createInterface({ input: child.stdout! }).on('line', (l) => {
        httpUrl ||= /HTTP (http:\/\/127\.0\.0\.1:\d+)/.exec(l)?.[1] ?? '';
        enrolUrl ||= /device enrolment on (https?:\/\/\S+)/.exec(l)?.[1] ?? '';
        if (httpUrl && (enrolUrl || !opts.enrol)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    return { child, httpUrl, enrolUrl };
  }

  /** Ends every process this object started or tracks, one after the other. */
  async stopAll(): Promise<void> {
    for (const c of [...this.live]) await stopChild(c, 'SIGTERM', this.opts.graceMs);
  }
}
