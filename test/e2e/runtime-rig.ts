/**
 * Process-level rig for the runtime's end-to-end tests: the device as a
 * child process (`rc-device run --config FILE`), the turnstile controller
 * simulator as a child process on a socat pty, a sync-server with its
 * embedded broker in the test process (restartable on the same port); and,
 * for the canteen and partner e2e, a provisioned reader + display device
 * with all of these started in one call (startDisplayDeviceRig).
 * Everything started here is stopped by pid in stop()/afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { queryStatus, type StatusReply } from '../../device/runtime/status.js';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { initDevice } from '../../provisioning/ops.js';
import { startServer, type RunningServer } from '../../sync-server/server.js';
import { dbOption } from '../support/sync-harness.js';
import { PcscdRig } from '../support/rig/pcscd.js';
import { createPtyPair } from '../support/rig/pty.js';
import { VcardHost } from '../support/rig/vcards.js';
import { startSimProcess, type SimLine as DisplayLine, type SimProcess } from '../support/sim/process.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const mirSpec = (pan: string, psn = '01') => ({ kind: 'emv' as const, pan, expiry: '2029-06', psn });

/** Synthetic, Luhn-valid PANs. */
export const PAN = {
  pensioner: '2200700000000017',
  unknown: '2200700000000025',
  stopped: '2200700000000033',
  student: '2200700000000041',
};

export async function until<T>(f: () => T | Promise<T>, timeoutMs: number, what: string, everyMs = 50): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ---- sync-server (in this process) ------------------------------------------

export interface ServerRig {
  server: RunningServer;
  /** The server's data dir (operatorFetch finds the operator's credentials there). */
  dataDir: string;
  url: string;
  port: number;
  restart(downMs?: number): Promise<void>;
  stopBroker(): Promise<void>;
  startBroker(): Promise<void>;
  journal(device: string): { seq: number; result: string; reason: string; fare: number; benefit: string | null }[];
  close(): Promise<void>;
}

export async function startServerRig(): Promise<ServerRig> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rc-rt-e2e-srv-'));
  const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const opts = { dataDir, mqttPort: 0, httpPort: 0, tokenKey: DEV_TOKEN_KEY, log, chargingIntervalMs: 60_000, ...dbOption(dataDir) };
  let server: RunningServer | null = await startServer(opts);
  const url = server.mqttUrl;
  const port = Number(new URL(url).port);
  const rig: ServerRig = {
    get server() {
      if (!server) throw new Error('server stopped');
      return server;
    },
    dataDir,
    url,
    port,
    async stopBroker() {
      await server?.close();
      server = null;
    },
    async startBroker() {
      server ??= await startServer({ ...opts, mqttPort: port });
    },
    async restart(downMs = 0) {
      await rig.stopBroker();
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      await rig.startBroker();
    },
    journal(device) {
      return rig.server.db.prepare('SELECT seq, result, reason, fare, benefit FROM journal WHERE device = ? ORDER BY seq').all(device) as ReturnType<
        ServerRig['journal']
      >;
    },
    async close() {
      await server?.close().catch(() => undefined);
      server = null;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return rig;
}

export async function* linesOf(text: string): AsyncIterable<string> {
  yield text; // the CSV text in one chunk (the parser streams any chunking)
}

export async function seedRegistry(s: ServerRig): Promise<void> {
  const api = s.server.api;
  await api.importCsv(
    'cards',
    linesOf(
      ['person_id,pan,psn,expiry', `P-ANNA,${PAN.pensioner},01,2029-06`, `P-TIMUR,${PAN.student},01,2029-06`, `P-LOST,${PAN.stopped},01,2029-06`].join('\n'),
    ),
    false,
  );
  await api.importCsv('benefits', linesOf(['person_id,category,valid_from,valid_to', 'P-ANNA,pensioner,2020-01-01,2030-12-31'].join('\n')), false);
  await api.importCsv(
    'enrolments',
    linesOf(['person_id,school_id,role,grade,meal_category,valid_from,valid_to', 'P-TIMUR,7,student,5,,2020-01-01,2030-12-31'].join('\n')),
    false,
  );
  await api.importCsv('stoplist', linesOf(['pan,expiry,reason', `${PAN.stopped},2029-06,lost`].join('\n')), false);
}

// ---- turnstile controller simulator (child process) ---------------------------

export interface SimLine {
  type: string;
  command?: { type: string; direction?: string };
  event?: { type: string };
  acked?: boolean;
}

export interface SimProc {
  lines: SimLine[];
  pid: number | undefined;
  waitFor(pred: (m: SimLine) => boolean, what: string, timeoutMs?: number): Promise<SimLine>;
  opens(): SimLine[];
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSim(port: string, extra: string[] = []): Promise<SimProc> {
  const script = join(ROOT, 'test', 'support', 'sim', 'turnstile-sim.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', port, '--pass-delay-ms', '30', ...extra], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const lines: SimLine[] = [];
  const watchers = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as SimLine);
    } catch {
      return;
    }
    for (const w of [...watchers]) w();
  });
  const sim: SimProc = {
    lines,
    pid: child.pid,
    waitFor: (pred, what, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = lines.find(pred);
          if (m) {
            watchers.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`simulator: timed out waiting for ${what}; saw ${JSON.stringify(lines.slice(-10))}`));
        }, timeoutMs);
        watchers.add(check);
        check();
      }),
    opens: () => lines.filter((m) => m.type === 'command' && m.command?.type === 'open'),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
  await sim.waitFor((m) => m.type === 'ready', 'ready');
  return sim;
}

// ---- the device (child process) -------------------------------------------------

export interface DeviceProc {
  pid: number | undefined;
  socket: string;
  logs: string[];
  status(): Promise<StatusReply>;
  waitStatus(pred: (s: StatusReply) => boolean, what: string, timeoutMs?: number): Promise<StatusReply>;
  /** SIGTERM; resolves with the exit code. */
  terminate(): Promise<number | null>;
  /** Send a signal, no waiting. */
  signal(sig: NodeJS.Signals): void;
  /** Wait for the exit (SIGKILL after timeoutMs); resolves with the exit code. */
  exited(timeoutMs?: number): Promise<number | null>;
  kill(): Promise<void>;
  exitCode(): number | null;
}

export async function startDeviceProc(config: Record<string, unknown>, dir: string, env: NodeJS.ProcessEnv): Promise<DeviceProc> {
  const cfgPath = join(dir, 'device.json');
  const socket = join(dir, 'rc-device.sock');
  writeFileSync(cfgPath, JSON.stringify({ ...config, runtime: { dataDir: dir, statusSocket: socket } }, null, 2));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'device', 'cli.ts'), 'run', '--config', cfgPath], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...env, RC_LOG_LEVEL: 'info', RC_DEV_TOKEN_KEY: '1' }, // the rig's server hands out the development key: allowed for tests only
  });
  const logs: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => logs.push(l));
  let code: number | null = null;
  const exited = new Promise<void>((r) =>
    child.once('exit', (c) => {
      code = c;
      r();
    }),
  );
  const d: DeviceProc = {
    pid: child.pid,
    socket,
    logs,
    status: () => queryStatus(socket, 2000),
    waitStatus: (pred, what, timeoutMs = 20_000) =>
      until(
        async () => {
          const s = await queryStatus(socket, 2000);
          return pred(s) ? s : null;
        },
        timeoutMs,
        `device status: ${what}`,
        100,
      ),
    async terminate() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    signal(sig) {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
    async exited(timeoutMs = 10_000) {
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(t);
      return code;
    },
    exitCode: () => code,
  };
  await d
    .waitStatus(() => true, 'status socket answers', 30_000)
    .catch((e: unknown) => {
      throw new Error(`${String(e)}\ndevice log:\n${logs.slice(-20).join('\n')}`);
    });
  return d;
}

/** Fast serial timings so faults are noticed within a second. */
export const FAST_TIMING = {
  ackTimeoutMs: 100,
  retries: 1,
  passWindowMs: 3000,
  passGuardMs: 500,
  reconnectMinMs: 50,
  reconnectMaxMs: 400,
  portCheckMs: 100,
  keepaliveMs: 300,
  downAfterFailures: 2,
};

// ---- a reader + display device, provisioned and running (the canteen and partner e2e) ---------

/** What the technician enrols: a canteen terminal of a school, or a partner's resident check. */
export type DisplayDeviceKind = { kind: 'canteen'; school: string } | { kind: 'partner'; partner: string };

export interface DisplayDeviceRig {
  srv: ServerRig;
  dev: DeviceProc;
  display: SimProcess;
  deviceId: string;
  /** Insert a virtual Mir card on the device's reader, wait for its tap and for the card's removal; resolves with the tap. */
  tap(pan: string): Promise<NonNullable<StatusReply['lastTap']>>;
  /** Resolves once the RCP/1 display has been asked to show a text starting with `text`. */
  shown(text: string): Promise<DisplayLine>;
  /** Stop everything started here, by pid; never throws. */
  close(): Promise<void>;
}

/**
 * A private pcscd + vpcd (one reader) with a vcard host, a display simulator process on a socat pty,
 * a sync-server rig (seeded by `seed`, which also publishes the rules the device needs), and the
 * device provisioned through rc-provision init's code path and run as `rc-device run`; resolves
 * once the device is connected, holds its `listScope` list, sees its reader idle and its display ok.
 * A failure half-way stops what was already started.
 */
export async function startDisplayDeviceRig(o: {
  friendlyName: string;
  device: DisplayDeviceKind;
  listScope: string;
  seed: (srv: ServerRig) => Promise<void>;
}): Promise<DisplayDeviceRig> {
  const started: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    started.length = 0;
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), `rc-${o.device.kind}-e2e-`));
    started.push(async () => rmSync(dir, { recursive: true, force: true }));
    const srv = await startServerRig();
    started.push(() => srv.close());
    const pty = await createPtyPair();
    started.push(() => pty.close());
    const pcscd = await PcscdRig.create({ friendlyName: o.friendlyName });
    started.push(() => pcscd.dispose());
    const slot = pcscd.slots[0]!;
    const host = await VcardHost.start();
    started.push(() => host.close());
    const display = await startSimProcess('display', pty.b);
    started.push(() => display.stop());
    await o.seed(srv);
    const token = srv.server.provisioning.createToken({ ...o.device, ttlSec: 600 }).token;
    const devDir = join(dir, 'dev');
    const p = await initDevice({ server: srv.server.httpUrl, token, ...o.device, dir: devDir, displayPort: pty.a, reader: slot.readerName });
    const env = pcscd.clientEnv();
    delete env.RC_TOKEN_KEY;
    const dev = await startDeviceProc(JSON.parse(readFileSync(p.configFile, 'utf8')) as Record<string, unknown>, devDir, env);
    started.push(() => dev.kill());
    await dev.waitStatus(
      (s) => s.sync.connected && s.lists.some((l) => l.scope === o.listScope) && s.readers[0]?.state === 'idle' && s.peripherals[0]?.health.status === 'ok',
      `${o.device.kind} device ready`,
      30_000,
    );
    return {
      srv,
      dev,
      display,
      deviceId: p.deviceId,
      async tap(pan) {
        const before = (await dev.status()).taps;
        await host.insert(slot.port, mirSpec(pan));
        const s = await dev.waitStatus((x) => x.taps > before, 'a tap');
        await host.remove(slot.port);
        await dev.waitStatus((x) => x.readers[0]?.cardPresent === false, 'card removed');
        return s.lastTap!;
      },
      shown: (text) => display.waitFor((m) => m.type === 'command' && m.command?.type === 'show' && m.command.text?.startsWith(text) === true, text),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
