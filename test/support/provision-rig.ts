/**
 * Provisioning test rig: a sync-server in this process with device auth on its
 * embedded broker, or with a real Mosquitto that runs on the password/ACL
 * files the server writes (allow_anonymous false, reloaded by SIGHUP).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { startServer, type RunningServer, type ServerOptions } from '../../sync-server/server.js';
import { mosquittoHash } from '../../sync-server/mosquitto-auth.js';
import type { TokenCreated } from '../../protocol/enrol.js';
import type { DeviceKind } from '../../protocol/ids.js';
import { expect } from 'vitest';
import { freePort, waitPort } from './rig/broker.js';
import type { Procs, Run } from './rig/procs.js';
import { dbOption, testLogger } from './sync-harness.js';

export const RULES = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'provision', 'rules.json'), 'utf8')) as unknown;

export type ProvMode = 'embedded' | 'mosquitto';

export interface ProvStack {
  mode: ProvMode;
  server: RunningServer;
  dataDir: string;
  brokerUrl: string;
  serverUser: string;
  serverPassword: string;
  /** Mosquitto's pid (mosquitto mode). */
  mosquittoPid: number | null;
  token(kind: DeviceKind, extra?: { school?: string; route?: string; ttlSec?: number }): TokenCreated;
  close(): Promise<void>;
}

export async function startProvStack(mode: ProvMode, extra: Partial<ServerOptions> = {}): Promise<ProvStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rc-prov-srv-'));
  const serverPassword = 'prov-test-server-secret';
  // on Mosquitto the server's own users have only their purpose's topics: tests observe as a user of their own with every right
  const serverUser = mode === 'mosquitto' ? 'rc-test-observer' : 'rc-sync-server';
  let mosq: ChildProcess | null = null;
  let brokerUrl: string | undefined;
  const passwordFile = join(dataDir, 'mosquitto.passwd');
  const aclFile = join(dataDir, 'mosquitto.acl');
  if (mode === 'mosquitto') {
    const port = await freePort();
    brokerUrl = `mqtt://127.0.0.1:${port}`;
    // the server writes both files before Mosquitto starts; Mosquitto needs them to exist at start
    writeFileSync(passwordFile, '', { mode: 0o600 });
    writeFileSync(aclFile, '', { mode: 0o600 });
    const conf = join(dataDir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${passwordFile}`,
        `acl_file ${aclFile}`,
        'persistence false',
        'max_queued_messages 100000',
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        '',
      ].join('\n'),
    );
    mosq = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] });
    await waitPort(port);
  }
  const server = await startServer({
    dataDir,
    mqttPort: 0,
    httpPort: 0,
    tokenKey: DEV_TOKEN_KEY,
    log: testLogger(),
    brokerPassword: serverPassword,
    deviceAuth: {},
    ...dbOption(dataDir),
    ...(mode === 'mosquitto'
      ? {
          brokerUrl: brokerUrl!,
          brokerUsername: 'rc-sync-server',
          mosquitto: {
            passwordFile,
            aclFile,
            pid: mosq!.pid!,
            extraUsers: [{ user: serverUser, mosqHash: mosquittoHash(serverPassword), acl: ['topic readwrite rc/v1/#'] }],
          },
        }
      : {}),
    ...extra,
  });
  await server.api.setConfig('rules', RULES);
  return {
    mode,
    server,
    dataDir,
    brokerUrl: server.mqttUrl,
    serverUser,
    serverPassword,
    mosquittoPid: mosq?.pid ?? null,
    token: (kind, x = {}) =>
      server.provisioning.createToken({ kind, ttlSec: x.ttlSec ?? 3600, ...(x.school ? { school: x.school } : {}), ...(x.route ? { route: x.route } : {}) }),
    async close() {
      await server.close().catch(() => undefined);
      if (mosq && mosq.exitCode === null) {
        const m = mosq;
        await new Promise<void>((res) => {
          m.once('exit', () => res());
          m.kill('SIGKILL');
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Connect with MQTT 3.1.1; resolves the client or rejects with the broker's refusal. */
export function connectAs(url: string, clientId: string, username?: string, password?: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    protocolVersion: 4,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  });
}

/** Resolves true when the client is disconnected within `ms`. */
export function closedWithin(c: MqttClient, ms: number): Promise<boolean> {
  if (!c.connected) return Promise.resolve(true);
  return new Promise((res) => {
    const t = setTimeout(() => res(false), ms);
    c.once('close', () => {
      clearTimeout(t);
      res(true);
    });
  });
}

/**
 * `rc-sync-server start` as the operator runs it beside an external broker (`brokerArgs`: --broker and how the server
 * keeps that broker's users), with the development token key, the operator API on a free loopback port and the device
 * enrolment listener on another; resolves with both URLs once the server printed them.
 */
export async function startEnrolServer(
  procs: Procs,
  dataDir: string,
  brokerArgs: string[],
  opts: { stderr?: 'ignore' | 'inherit'; timeoutMs?: number } = {},
): Promise<{ httpUrl: string; enrolUrl: string }> {
  const enrolPort = await freePort();
  const args = ['start', '--dev-token-key', '--data', dataDir, ...brokerArgs, '--http-port', '0', '--enrol-listen', `127.0.0.1:${enrolPort}`];
  const { httpUrl, enrolUrl } = await procs.startServer(args, { enrol: true, ...opts }); // --dev-token-key: the public development key, tests only
  return { httpUrl, enrolUrl };
}

/**
 * The operator's first steps on a server started as a process (docs/provisioning.md): `config set BASE/rules.json`,
 * then `import KIND BASE/KIND.csv` for each CSV in order, each with `serverArgs` (`--server URL`, …); every one exits 0.
 */
export async function seedServer(procs: Procs, base: string, rules: unknown, csvs: Record<string, string>, serverArgs: string[]): Promise<void> {
  writeFileSync(join(base, 'rules.json'), JSON.stringify(rules));
  const steps = [['config', 'set', join(base, 'rules.json')]];
  for (const [kind, csv] of Object.entries(csvs)) {
    writeFileSync(join(base, `${kind}.csv`), csv);
    steps.push(['import', kind, join(base, `${kind}.csv`)]);
  }
  for (const a of steps) {
    const r = await procs.run('sync-server', [...a, ...serverArgs]);
    expect(r.code, r.stderr).toBe(0);
  }
}

/** The technician's `rc-provision init` of bus V1 on route 7 into `dir` with a fresh token from the operator; its device id. */
export async function initBus(procs: Procs, urls: { httpUrl: string; enrolUrl: string }, dir: string): Promise<string> {
  const t = await procs.run('sync-server', ['enrol-token', 'create', '--kind', 'bus', '--route', '7', '--server', urls.httpUrl]);
  expect(t.code, t.stderr).toBe(0);
  const r = await procs.run('provisioning', [
    'init',
    '--server',
    urls.enrolUrl,
    '--enrol-token',
    t.stdout.trim(),
    '--kind',
    'bus',
    '--route',
    '7',
    '--vehicle',
    'V1',
    '--dir',
    dir,
    '--json',
  ]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { deviceId: string }).deviceId;
}

export interface CheckReport {
  ok: boolean;
  items: { id: string; ok: boolean; detail: string; code?: string }[];
}

/** `rc-provision check --json` of the device in `dir` without reader, card and peripherals (a device with no hardware). */
export async function checkNoHardware(procs: Procs, dir: string, syncTimeoutSec: number): Promise<{ run: Run; report: CheckReport }> {
  const run = await procs.run('provisioning', ['check', '--dir', dir, '--json', '--skip', 'reader,card,peripherals', '--sync-timeout', String(syncTimeoutSec)]);
  return { run, report: JSON.parse(run.stdout) as CheckReport };
}

/** What `checkNoHardware` lists when all is well, in its order. */
export const NO_HARDWARE_CHECK_PASSED = [
  ['config', true],
  ['disk', true],
  ['server', true],
  ['clock', true],
  ['broker', true],
  ['sync', true],
];

/** Two cards (synthetic, Luhn-valid Mir numbers) for `seedServer`: the transit list has 2 entries. */
export const TWO_CARDS_CSV = 'person_id,pan,psn,expiry\nP-1,2200700000000017,01,2029-06\nP-2,2200700000000025,01,2029-06\n';
