import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNodelayShim } from './shim.js';
import { waitFor } from '../wait.js';

/**
 * A private pcscd for one test file.
 *
 * pcscd hard-codes /run/pcscd for its socket and pid file, so it runs in its
 * own mount namespace (`unshare -m`) with a temp dir bind-mounted on
 * /run/pcscd. Clients in this process reach it through libpcsclite's
 * PCSCLITE_CSOCK_NAME (read once, at the first PC/SC call: call useAsClient()
 * before anything touches the smartcard binding). Its readers come from a
 * project-owned config dir (`pcscd -c DIR`): vpcd entries on free ports we
 * chose, so test files run in parallel, each with its own pcscd. The vpcd
 * entry gives two readers ("<name> 00 00" on port P, "<name> 00 01" on P+1).
 * Only ONE vpcd entry per pcscd works: the driver keeps its sockets in a
 * global table indexed by slot number, so a second entry silently takes over
 * the first one's slots (its cards are never accepted; measured). A test that
 * needs more than two readers starts a second rig.
 *
 * The TCP_NODELAY shim (test/support/rig/nodelay-shim.c) is preloaded into pcscd: an
 * APDU then costs well under 1 ms instead of ~45 ms. The shim also makes
 * pcscd die with this process (PR_SET_PDEATHSIG), and stale rigs of dead test
 * processes are cleaned up at the next start.
 */

export interface PcscdRigOptions {
  /** TCP_NODELAY on pcscd's accepted sockets. Default true. */
  nodelay?: boolean;
  /** Reader friendly name. Default "RC Virtual PCD". */
  friendlyName?: string;
  /** pcscd debug log (-d) into the rig dir. Never logs APDUs (-a is never used). */
  debug?: boolean;
}

export interface VpcdSlot {
  /** TCP port the virtual card connects to */
  port: number;
  /** PC/SC reader name pcscd gives this slot */
  readerName: string;
}

const RIG_PREFIX = 'rc-pcscd-';
const VPCD_DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';
const live = new Set<number>();
let clientOf: string | null = null;
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of live) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function procName(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Remove rigs left behind by test processes that died without cleaning up. */
export function cleanStaleRigs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(RIG_PREFIX));
  } catch {
    return;
  }
  for (const n of names) {
    const dir = join(tmpdir(), n);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      continue; // being created right now, or not ours
    }
    if (owner > 0 && pidAlive(owner)) continue;
    const pcscdPid = readPid(join(dir, 'run', 'pcscd.pid'));
    if (pcscdPid && procName(pcscdPid) === 'pcscd') {
      try {
        process.kill(pcscdPid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function readPid(path: string): number | null {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '0.0.0.0', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A base port P such that P .. P+2n-1 are free right now. */
async function pickPorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + 2 * Math.floor(Math.random() * 15000);
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error('no free port range for vpcd');
}

/** TCP ports in LISTEN state owned by process `pid` (from /proc). */
function listeningPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const l = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(l);
        if (m) inodes.add(m[1]!);
      } catch {
        /* fd closed meanwhile */
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '0A') continue;
      if (!inodes.has(cols[9]!)) continue;
      const port = parseInt(cols[1]!.split(':')[1]!, 16);
      ports.add(port);
    }
  }
  return ports;
}

async function unixSocketAnswers(path: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class PcscdRig {
  readonly dir: string;
  readonly runDir: string;
  readonly confDir: string;
  readonly socketPath: string;
  readonly logPath: string;
  slots: VpcdSlot[] = [];
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private readonly opts: Required<PcscdRigOptions>;
  private shimPath: string | null = null;

  private constructor(opts: PcscdRigOptions) {
    this.opts = { nodelay: opts.nodelay ?? true, friendlyName: opts.friendlyName ?? 'RC Virtual PCD', debug: opts.debug ?? false };
    this.dir = mkdtempSync(join(tmpdir(), RIG_PREFIX));
    writeFileSync(join(this.dir, 'owner.pid'), String(process.pid));
    this.runDir = join(this.dir, 'run');
    this.confDir = join(this.dir, 'reader.conf.d');
    mkdirSync(this.runDir);
    mkdirSync(this.confDir);
    this.socketPath = join(this.runDir, 'pcscd.comm');
    this.logPath = join(this.dir, 'pcscd.log');
  }

  /** Create the rig and start its pcscd (ready when this resolves). */
  static async create(opts: PcscdRigOptions = {}): Promise<PcscdRig> {
    cleanStaleRigs();
    installExitHook();
    const rig = new PcscdRig(opts);
    rig.shimPath = buildNodelayShim();
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const base = await pickPorts(2);
      const conf: string[] = [];
      const hex = `0x${base.toString(16).toUpperCase()}`;
      const fn = rig.opts.friendlyName;
      conf.push(`FRIENDLYNAME "${fn}"\nDEVICENAME   /dev/null:${hex}\nLIBPATH      ${VPCD_DRIVER}\nCHANNELID    ${hex}\n`);
      // pcscd names the slots "<FRIENDLYNAME> 00 00" and "<FRIENDLYNAME> 00 01"
      rig.slots = [0, 1].map((s) => ({ port: base + s, readerName: `${fn} 00 0${s}` }));
      rmSync(rig.confDir, { recursive: true, force: true });
      mkdirSync(rig.confDir);
      conf.forEach((c, i) => writeFileSync(join(rig.confDir, `vpcd-${i}`), c));
      try {
        await rig.start();
        return rig;
      } catch (e) {
        lastErr = e;
        await rig.stop();
      }
    }
    rmSync(rig.dir, { recursive: true, force: true });
    throw lastErr;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** Point this process's libpcsclite at this rig. Call before the first PC/SC call of the process. */
  useAsClient(): void {
    // libpcsclite reads the variable once per process: a second rig cannot take over
    if (clientOf !== null && clientOf !== this.socketPath) {
      throw new Error(
        'this process already talks to another pcscd rig (libpcsclite caches the socket path): use one rig per process, or clientEnv() for a child',
      );
    }
    clientOf = this.socketPath;
    process.env.PCSCLITE_CSOCK_NAME = this.socketPath;
  }

  /** Environment for a child process that should use this rig's pcscd. */
  clientEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    return { ...base, PCSCLITE_CSOCK_NAME: this.socketPath };
  }

  /** Start pcscd (again). Resolves when its socket answers and every vpcd port listens. */
  async start(): Promise<void> {
    if (this.child) return;
    // stale files of a pcscd that was killed hard: a new pcscd refuses to start over them
    const stalePid = readPid(join(this.runDir, 'pcscd.pid'));
    if (stalePid && procName(stalePid) === 'pcscd') {
      try {
        process.kill(stalePid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(join(this.runDir, 'pcscd.comm'), { force: true });
    rmSync(join(this.runDir, 'pcscd.pid'), { force: true });
    mkdirSync('/run/pcscd', { recursive: true });

    const logFd = openSync(this.logPath, 'a');
    const args = ['-f', '-c', this.confDir];
    if (this.opts.debug) args.push('-d');
    const child = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        'dir="$0"; shim="$1"; shift; mount --bind "$dir" /run/pcscd && exec env LD_PRELOAD="$shim" pcscd "$@"',
        this.runDir,
        this.shimPath ?? '',
        ...args,
      ].map(String),
      {
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, RC_SHIM_PARENT_PID: String(process.pid), RC_SHIM_NODELAY: this.opts.nodelay ? '1' : '0' },
      },
    );
    closeSync(logFd);
    this.child = child;
    const pid = child.pid;
    if (pid) live.add(pid);
    let exitedEarly = false;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        exitedEarly = true;
        if (pid) live.delete(pid);
        if (this.child === child) this.child = null;
        resolve();
      });
      child.once('error', () => {
        exitedEarly = true;
        if (this.child === child) this.child = null;
        resolve();
      });
    });

    const wantPorts = this.slots.map((s) => s.port);
    const ready = async (): Promise<'exited' | 'ready' | false> => {
      if (exitedEarly) return 'exited';
      if (!pid || !(await unixSocketAnswers(this.socketPath))) return false;
      const ports = listeningPorts(pid);
      return wantPorts.every((p) => ports.has(p)) && 'ready';
    };
    const state = await waitFor(ready, { timeoutMs: 10_000, what: 'pcscd ready', everyMs: 25 }).catch(() => 'timeout' as const);
    if (state === 'ready') return;
    const log = readFileSync(this.logPath, 'utf8').split('\n').slice(-15).join('\n');
    await this.stop();
    throw new Error(`pcscd did not become ready (ports ${wantPorts.join(',')}):\n${log}`);
  }

  /** Stop pcscd (SIGTERM, then SIGKILL after 3 s); resolves when it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    try {
      child.kill('SIGTERM');
    } catch {
      /* gone */
    }
    const t = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, 3000);
    await this.exited;
    clearTimeout(t);
    this.child = null;
  }

  /** Kill pcscd hard (leaves its socket and pid file behind, like a crash). */
  async crash(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }

  /** Stop pcscd and remove the rig dir. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
