/**
 * Process-level fleet rig (issue 10, issue 13 soak): everything a process, as deployed.
 *  - the broker: the server's embedded one, or a real Mosquitto on the password/ACL files the server writes;
 *  - `dist/rc-sync-server.js start` on fixed ports (restartable, also after kill -9);
 *  - bus devices: enrolled with `dist/rc-provision.js init` (each its own dir, keys and store), then
 *    `dist/rc-device.js run`, each reaching the broker through its own FaultProxy (network cuts);
 *  - cards tapped through real pcscd + vpcd: one PcscdRig per two readers, one vcard host for all.
 * The server keeps its registry in its data dir (SQLite), or with RC_TEST_DB=postgres in the run's PostgreSQL
 * (test/support/test-db.ts: one database per data dir, so a restarted server finds its registry again).
 * The operator's calls go through operatorFetch (credentials in one place). Everything started
 * here is stopped by pid in close(), also when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { queryStatus, type StatusReply } from '../../device/runtime/status.js';
import { MAX_MQTT_PACKET } from '../../protocol/wire/mqtt-guard.js';
import { openDatabase } from '../../sync-server/db/open.js';
import type { Db } from '../../sync-server/registry.js';
import { operatorFetch } from '../support/operator-api.js';
import { mirSpec } from '../support/pans.js';
import { freePort, waitPort } from '../support/rig/broker.js';
import { PcscdRig, type VpcdSlot } from '../support/rig/pcscd.js';
import { stopChild } from '../support/rig/procs.js';
import { VcardHost } from '../support/rig/vcards.js';
import { collect } from '../support/collect.js';
import { testDatabase, testDatabaseArgs } from '../support/test-db.js';
import { waitFor } from '../support/wait.js';
import { FaultProxy } from './fleet-proxy.js';

export const ROOT = join(import.meta.dirname, '..', '..');
const DIST = (p: string) => join(ROOT, 'dist', p);
export type BrokerKind = 'embedded' | 'mosquitto';

const CLOCK_PRELOAD = join(ROOT, 'test', 'e2e', 'fleet-clock-child.ts');
/** `node` arguments for a dist program; with a clock offset, preloaded with the shifted clock (test/e2e/fleet-clock-child.ts). */
function nodeArgs(program: string, args: string[], clockOffsetMs: number): string[] {
  return [...(clockOffsetMs ? ['--import', 'tsx', '--import', CLOCK_PRELOAD] : []), DIST(program), ...args];
}
function clockEnv(env: NodeJS.ProcessEnv, clockOffsetMs: number): NodeJS.ProcessEnv {
  return clockOffsetMs ? { ...env, RC_TEST_CLOCK_OFFSET_MS: String(clockOffsetMs) } : env;
}

/**
 * A wall clock for the rig's processes that starts at noon (Moscow) of today's service day and runs in
 * real time from there: a run of a few minutes then stays inside one service day (and one quota month)
 * whenever it starts, also at 20:58 UTC, three minutes before Moscow's midnight. Moscow keeps UTC+3 all year.
 */
export function noonClock(now = Date.now()): { offsetMs: number; serviceDay: string } {
  const serviceDay = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Moscow', year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
  return { offsetMs: Date.parse(`${serviceDay}T12:00:00+03:00`) - now, serviceDay };
}

const live = new Set<ChildProcess>();
let hooked = false;
function track(c: ChildProcess): ChildProcess {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const x of live) x.kill('SIGKILL');
    });
  }
  live.add(c);
  c.once('exit', () => live.delete(c));
  return c;
}

/** One process of the rig, restarted as the scenario says: stopped, killed (and counted), running or not. */
abstract class RigProcess {
  protected child: ChildProcess | null = null;
  kills = 0;

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM and wait. */
  async stop(): Promise<void> {
    await stopChild(this.child);
    this.child = null;
  }

  /** kill -9 (counted). */
  async kill9(): Promise<void> {
    this.kills++;
    await stopChild(this.child, 'SIGKILL');
    this.child = null;
  }
}

// ---- Mosquitto -----------------------------------------------------------------

export class Mosquitto extends RigProcess {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    super();
  }

  static async start(dir: string): Promise<Mosquitto> {
    mkdirSync(dir, { recursive: true });
    const m = new Mosquitto(dir, await freePort());
    for (const f of ['passwd', 'acl']) writeFileSync(m.file(f), '', { mode: 0o600 });
    writeFileSync(
      m.file('mosquitto.conf'),
      [
        `listener ${m.port} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${m.file('passwd')}`,
        `acl_file ${m.file('acl')}`,
        `pid_file ${m.file('mosquitto.pid')}`,
        'persistence false',
        'max_queued_messages 100000',
        'max_inflight_messages 100',
        `max_packet_size ${MAX_MQTT_PACKET}`,
        'set_tcp_nodelay true',
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        '',
      ].join('\n'),
    );
    await m.up();
    return m;
  }

  file(n: string): string {
    return join(this.dir, n);
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async up(): Promise<void> {
    this.child = track(spawn('mosquitto', ['-c', this.file('mosquitto.conf')], { stdio: 'ignore' }));
    await waitPort(this.port, 15_000);
  }

  async close(): Promise<void> {
    await stopChild(this.child, 'SIGKILL');
    this.child = null;
  }
}

// ---- the sync-server (a process) ----------------------------------------------------

export class ServerProc extends RigProcess {
  readonly log: string[] = [];
  private constructor(
    readonly dataDir: string,
    readonly httpPort: number,
    readonly mqttPort: number,
    readonly mosquitto: Mosquitto | null,
    private readonly env: NodeJS.ProcessEnv,
    /** How far the wall clock of the rig's processes (this server, and the devices enrolled with it) is shifted; 0: the real clock. */
    readonly clockOffsetMs: number,
  ) {
    super();
  }

  static async start(dataDir: string, mosquitto: Mosquitto | null, env: NodeJS.ProcessEnv, clockOffsetMs = 0): Promise<ServerProc> {
    const s = new ServerProc(dataDir, await freePort(), mosquitto ? mosquitto.port : await freePort(), mosquitto, env, clockOffsetMs);
    await s.up();
    return s;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** Where devices reach the broker (through their proxies). */
  get brokerPort(): number {
    return this.mosquitto?.port ?? this.mqttPort;
  }

  get target(): { httpUrl: string; dataDir: string } {
    return { httpUrl: this.httpUrl, dataDir: this.dataDir };
  }

  /** Start the process; `laterMs`: its wall clock runs that much further ahead of the rig's clock (a restart "two days later"). */
  async up(laterMs = 0, timeoutMs = 120_000): Promise<void> {
    const m = this.mosquitto;
    const clockOffsetMs = this.clockOffsetMs + laterMs;
    this.log.push(`---- start (${new Date().toISOString()}, clock offset ${clockOffsetMs} ms)`);
    const args = nodeArgs(
      'rc-sync-server.js',
      [
        'start',
        '--dev-token-key', // the public development key: tests only
        '--data',
        this.dataDir,
        '--http-port',
        String(this.httpPort),
        ...testDatabaseArgs(['--data', this.dataDir]), // PostgreSQL: `--database URL`, the same database on every restart
        ...(m
          ? ['--broker', m.url, '--mosquitto-passwd', m.file('passwd'), '--mosquitto-acl', m.file('acl'), '--mosquitto-pid-file', m.file('mosquitto.pid')]
          : ['--mqtt-port', String(this.mqttPort)]),
      ],
      clockOffsetMs,
    );
    const child = track(
      spawn(process.execPath, args, {
        cwd: ROOT,
        env: clockEnv({ ...this.env, RC_BROKER_PASSWORD: 'fleet-test-server-secret' }, clockOffsetMs),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    this.child = child;
    const keep = (l: string) => {
      this.log.push(l);
      if (this.log.length > 2000) this.log.splice(0, 1000);
    };
    createInterface({ input: child.stderr! }).on('line', keep);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL'); // a start that hangs is a failed start: nothing half-started stays behind
        reject(new Error(`sync-server did not start within ${timeoutMs} ms:\n${this.log.slice(-20).join('\n')}`));
      }, timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`sync-server exited (${code}):\n${this.log.slice(-20).join('\n')}`));
      });
      createInterface({ input: child.stdout! }).on('line', (l) => {
        keep(l);
        if (/HTTP http:\/\/127\.0\.0\.1:\d+/.test(l)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  async api<T = unknown>(path: string, init: RequestInit = {}): Promise<T> {
    const r = await operatorFetch(this.target, path, init);
    const text = await r.text();
    if (!r.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${r.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async importCsv(kind: string, csv: string): Promise<void> {
    await this.api(`/v1/import/${kind}`, { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
  }

  async setRules(rules: unknown, name = 'rules'): Promise<void> {
    await this.api('/v1/config', { method: 'POST', body: JSON.stringify({ name, rules }) });
  }

  /**
   * The registry: on SQLite its file, read-only (WAL: readable beside the running server); on PostgreSQL the
   * server's database (test-db.ts, by data dir), another connection whose transactions are read-only.
   */
  db(): Db {
    const url = testDatabase(this.dataDir);
    if (url === undefined) return new Database(join(this.dataDir, 'registry.sqlite'), { readonly: true, fileMustExist: true });
    const { db } = openDatabase({ kind: 'postgres', url });
    return db.exec('SET default_transaction_read_only = on');
  }
}

// ---- readers: pcscd rigs (two readers each) and one vcard host ------------------------

export class Readers {
  private constructor(
    private readonly rigs: PcscdRig[],
    readonly host: VcardHost,
  ) {}

  /** `n` readers: ceil(n/2) private pcscd daemons (one vpcd entry, two slots each). */
  static async start(n: number): Promise<Readers> {
    const rigs: PcscdRig[] = [];
    try {
      for (let i = 0; i < Math.ceil(n / 2); i++) rigs.push(await PcscdRig.create({ friendlyName: `RC Fleet ${i}` }));
      return new Readers(rigs, await VcardHost.start());
    } catch (e) {
      for (const r of rigs) await r.dispose().catch(() => undefined);
      throw e;
    }
  }

  /** Reader i: its slot and the environment a device process needs to reach its pcscd. */
  reader(i: number): { slot: VpcdSlot; env: NodeJS.ProcessEnv } {
    const rig = this.rigs[Math.floor(i / 2)];
    if (!rig) throw new Error(`no reader ${i}`);
    return { slot: rig.slots[i % 2]!, env: rig.clientEnv() };
  }

  async close(): Promise<void> {
    await this.host.close().catch(() => undefined);
    for (const r of this.rigs) await r.dispose().catch(() => undefined);
  }
}

// ---- bus devices ---------------------------------------------------------------------

export interface BusSpec {
  route: string;
  vehicle?: string;
}

export class BusProc extends RigProcess {
  readonly log: string[] = [];
  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly slot: VpcdSlot,
    readonly proxy: FaultProxy,
    private readonly env: NodeJS.ProcessEnv,
    private readonly host: VcardHost,
    private readonly clockOffsetMs: number,
  ) {
    super();
  }

  /**
   * Enrol a bus with `rc-provision init` (a one-time token from the operator API), point its broker
   * URL at its own proxy, and start `rc-device run` (unless start is false).
   */
  static async provision(server: ServerProc, readers: Readers, index: number, dir: string, spec: BusSpec, baseEnv: NodeJS.ProcessEnv): Promise<BusProc> {
    const { slot, env: pcscEnv } = readers.reader(index);
    const env: NodeJS.ProcessEnv = { ...baseEnv, ...pcscEnv, RC_DEV_TOKEN_KEY: '1' }; // the rig's server hands out the development key: allowed for tests only
    const t = await server.api<{ token: string }>('/v1/enrol-tokens', {
      method: 'POST',
      body: JSON.stringify({ kind: 'bus', route: spec.route, ttlSec: 3600 }),
    });
    const args = [
      'init',
      '--server',
      server.httpUrl,
      '--enrol-token',
      t.token,
      '--kind',
      'bus',
      '--route',
      spec.route,
      '--vehicle',
      spec.vehicle ?? `v-${index}`,
    ];
    args.push('--reader', slot.readerName, '--console', '--dir', dir, '--json');
    const r = await collect(
      track(
        spawn(process.execPath, nodeArgs('rc-provision.js', args, server.clockOffsetMs), {
          cwd: ROOT,
          env: clockEnv(env, server.clockOffsetMs),
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      ),
      120_000,
      'rc-provision init to exit',
    );
    if (r.code !== 0) throw new Error(`rc-provision init failed (${r.code}): ${r.stdout}${r.stderr}`);
    const id = (JSON.parse(r.stdout) as { deviceId: string }).deviceId;
    const proxy = await FaultProxy.start(server.brokerPort);
    const cfgFile = join(dir, 'device.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { sync: { brokerUrl: string } };
    cfg.sync.brokerUrl = proxy.url; // the device reaches the broker through its own link, which the test can cut
    writeFileSync(cfgFile, JSON.stringify(cfg, null, 2) + '\n');
    return new BusProc(id, dir, slot, proxy, env, readers.host, server.clockOffsetMs); // the bus runs on its server's clock
  }

  get socket(): string {
    return join(this.dir, 'rc-device.sock');
  }

  get storePath(): string {
    const cfg = JSON.parse(readFileSync(join(this.dir, 'device.json'), 'utf8')) as { store?: { path?: string } };
    return cfg.store?.path ?? join(this.dir, 'store.sqlite');
  }

  /** `rc-device run`; resolves when its status socket answers with the reader seen. */
  async up(waitConnected = true, timeoutMs = 120_000): Promise<void> {
    this.log.push(`---- start (${new Date().toISOString()})`);
    const child = track(
      spawn(process.execPath, nodeArgs('rc-device.js', ['run', '--config', join(this.dir, 'device.json')], this.clockOffsetMs), {
        cwd: ROOT,
        env: clockEnv({ ...this.env, RC_LOG_LEVEL: this.env.RC_LOG_LEVEL ?? 'info' }, this.clockOffsetMs),
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    this.child = child;
    createInterface({ input: child.stderr! }).on('line', (l) => {
      this.log.push(l);
      if (this.log.length > 2000) this.log.splice(0, 1000);
    });
    try {
      await this.waitStatus(
        (s) => s.readers.some((r) => r.name === this.slot.readerName && r.state !== 'absent') && (!waitConnected || s.sync.connected),
        'running',
        timeoutMs,
      );
    } catch (e) {
      await stopChild(child, 'SIGKILL'); // a start that hangs is a failed start
      this.child = null;
      throw e;
    }
  }

  status(): Promise<StatusReply> {
    return queryStatus(this.socket, 3000);
  }

  async waitStatus(pred: (s: StatusReply) => boolean, what: string, timeoutMs = 30_000): Promise<StatusReply> {
    return waitFor(
      async () => {
        if (this.child && !this.running) throw new Error(`rc-device ${this.id} exited`);
        const s = await this.status();
        return pred(s) ? s : null;
      },
      { timeoutMs, what: `${this.id}: ${what}`, everyMs: 100 },
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${this.log.slice(-15).join('\n')}`);
    });
  }

  /** Tap a virtual card (pan, psn) on this bus's reader; resolves with the tap the device reports. */
  async tap(pan: string, psn = '01', timeoutMs = 30_000): Promise<NonNullable<StatusReply['lastTap']>> {
    const before = (await this.status()).taps;
    await this.host.insert(this.slot.port, { ...mirSpec(pan, psn), expiry: '2030-12' }); // cardsCsv's expiry: the token is PAN ‖ expiry
    try {
      const s = await this.waitStatus((x) => x.taps > before, 'a tap', timeoutMs);
      return s.lastTap!;
    } finally {
      await this.host.remove(this.slot.port);
    }
  }

  /** The store, read-only (WAL: readable beside the running device). */
  db(): Database.Database {
    return new Database(this.storePath, { readonly: true, fileMustExist: true });
  }

  /** The fleet usage this bus holds for a token (hex), or null. */
  usageOf(token: string): { quota_cat: string | null; quota_used: number; fare_today: number } | null {
    if (!existsSync(this.storePath)) return null;
    const db = this.db();
    try {
      return (
        (db.prepare('SELECT quota_cat, quota_used, fare_today FROM usage_cards WHERE token = ?').get(Buffer.from(token, 'hex')) as
          { quota_cat: string | null; quota_used: number; fare_today: number } | undefined) ?? null
      );
    } finally {
      db.close();
    }
  }

  async close(): Promise<void> {
    await this.stop();
    await this.proxy.close();
  }
}

/** Stop everything, in order; never throws. */
export async function closeAll(
  buses: BusProc[],
  server: ServerProc | null,
  mosquitto: Mosquitto | null,
  readers: Readers | null,
  dirs: string[],
): Promise<void> {
  for (const b of buses) await b.close().catch(() => undefined);
  await server?.stop().catch(() => undefined);
  await mosquitto?.close().catch(() => undefined);
  await readers?.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** The dist programs exist (the tests that spawn them need `npm run build` first). */
export function distBuilt(): boolean {
  return ['rc-sync-server.js', 'rc-device.js', 'rc-provision.js'].every((f) => existsSync(DIST(f)));
}
