/**
 * Provisioning end to end, every step a process as in the field:
 * the operator starts `rc-sync-server start` (embedded broker, device auth),
 * publishes rules, imports cards and enrolments, creates a one-time token;
 * the technician runs `rc-provision init` and `rc-provision check` (a virtual
 * card through a private real pcscd, the turnstile controller simulator on a
 * socat pty); then `rc-device run --config DIR/device.json` syncs, decides
 * (the gate opens for an enrolled student) and uploads the journal; the
 * operator revokes the device and it is cut off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryStatus, type StatusReply } from '../../device/runtime/status.js';
import { PcscdRig, type VpcdSlot } from '../support/rig/pcscd.js';
import { createPtyPair, type PtyPair } from '../support/rig/pty.js';
import { VcardHost } from '../support/rig/vcards.js';
import { ROOT, startSim, type SimProc } from './runtime-rig.js';
import { PAN, mirSpec } from '../support/pans.js';
import { waitFor } from '../support/wait.js';
import { operatorFetch } from '../support/operator-api.js';

const ALL_DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const RULES = {
  schema: 1,
  tariff: { routes: { '7': { fullFareKopecks: 3500 } }, benefits: { pensioner: { kind: 'free' } } },
  school: { schedules: { student: [{ days: ALL_DAYS, from: '00:00', to: '24:00' }] }, antiPassback: 'off' },
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();
let env: NodeJS.ProcessEnv;

function cli(
  program: 'sync-server' | 'provisioning' | 'device',
  args: string[],
  opts: { onStderr?: (line: string) => void; timeoutMs?: number } = {},
): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, program, 'cli.ts'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  createInterface({ input: child.stderr! }).on('line', (l) => {
    stderr += l + '\n';
    opts.onStderr?.(l);
  });
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('close', (code) => {
      clearTimeout(t);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

async function stopChild(c: ChildProcess | null | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

let pcscd: PcscdRig;
let slot: VpcdSlot;
let host: VcardHost;
let pty: PtyPair;
let sim: SimProc | null = null;
let server: ChildProcess;
let serverUrl = '';
let base: string;
let devDir: string;
let deviceId = '';
let device: ChildProcess | null = null;
const deviceLog: string[] = [];

describe('provisioning end to end, as processes', () => {
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-prov-e2e-'));
    devDir = join(base, 'rc-device');
    pcscd = await PcscdRig.create({ friendlyName: 'RC Prov PCD' });
    slot = pcscd.slots[0]!;
    env = pcscd.clientEnv();
    delete env.RC_TOKEN_KEY;
    delete env.RC_SYNC_PASSWORD;
    env.RC_LOG_LEVEL = 'warn';
    env.RC_API_TOKEN_FILE = join(base, 'server', 'admin.token'); // the CLI runs below call the server as its admin
    host = await VcardHost.start();
    pty = await createPtyPair();
    sim = await startSim(pty.b);
    // the operator's server, as a process
    server = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'sync-server', 'cli.ts'),
        'start',
        '--dev-token-key',
        '--data',
        join(base, 'server'),
        '--mqtt-port',
        '0',
        '--http-port',
        '0',
      ],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    children.add(server);
    serverUrl = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('sync-server did not start')), 30_000);
      createInterface({ input: server.stdout! }).on('line', (l) => {
        const m = /HTTP (http:\/\/127\.0\.0\.1:\d+)/.exec(l);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
    });
    writeFileSync(join(base, 'rules.json'), JSON.stringify(RULES));
    writeFileSync(join(base, 'cards.csv'), `person_id,pan,psn,expiry\nP-TIMUR,${PAN.student},01,2029-06\n`);
    writeFileSync(
      join(base, 'enrolments.csv'),
      'person_id,school_id,role,grade,meal_category,valid_from,valid_to\nP-TIMUR,7,student,5,,2020-01-01,2030-12-31\n',
    );
    for (const args of [
      ['config', 'set', join(base, 'rules.json')],
      ['import', 'cards', join(base, 'cards.csv')],
      ['import', 'enrolments', join(base, 'enrolments.csv')],
    ]) {
      const r = await cli('sync-server', [...args, '--server', serverUrl]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 120_000);

  afterAll(async () => {
    await stopChild(device);
    for (const c of [...children]) await stopChild(c);
    await sim?.stop().catch(() => undefined);
    await host?.close().catch(() => undefined);
    await pcscd?.dispose().catch(() => undefined);
    await pty?.close().catch(() => undefined);
    if (base) rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it('the operator creates a one-time token; the technician runs init; the token is then spent', async () => {
    const t = await cli('sync-server', ['enrol-token', 'create', '--kind', 'turnstile', '--school', '7', '--ttl', '1h', '--json', '--server', serverUrl]);
    expect(t.code, t.stderr).toBe(0);
    const token = (JSON.parse(t.stdout) as { token: string }).token;
    const plain = await cli('sync-server', ['enrol-token', 'create', '--kind', 'bus', '--route', '7', '--server', serverUrl]);
    expect(plain.stdout).toMatch(/^rce_[A-Za-z0-9_-]{32}\n$/);

    const initArgs = [
      'init',
      '--server',
      serverUrl,
      '--enrol-token',
      token,
      '--kind',
      'turnstile',
      '--school',
      '7',
      '--direction',
      'entry',
      '--reader',
      slot.readerName,
      '--turnstile-port',
      pty.a,
      '--dir',
      devDir,
      '--json',
    ];
    const r = await cli('provisioning', initArgs);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    deviceId = (JSON.parse(r.stdout) as { deviceId: string }).deviceId;
    expect(deviceId).toMatch(/^turnstile-/);

    const again = await cli('provisioning', [...initArgs.slice(0, -3), '--dir', join(base, 'second'), '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout)).toMatchObject({ error: { code: 'provision.token-used' } });

    const list = await cli('sync-server', ['device', 'list', '--json', '--server', serverUrl]);
    expect(JSON.parse(list.stdout)).toMatchObject({ devices: [{ id: deviceId, kind: 'turnstile', school: '7', direction: 'entry', revokedAt: null }] });
  }, 90_000);

  it('check passes: reader, a tapped virtual card (scheme + masked PAN), the gate opens and closes, broker, first sync, disk, clock', async () => {
    let tapped = false;
    const r = await cli('provisioning', ['check', '--dir', devDir, '--card-timeout', '30', '--sync-timeout', '60'], {
      onStderr: (l) => {
        if (!tapped && l.includes('tap a card')) {
          tapped = true;
          void host.insert(slot.port, mirSpec(PAN.student));
        }
      },
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => /^(PASS|FAIL)/.test(l));
    expect(lines.length).toBe(9);
    expect(lines.every((l) => l.startsWith('PASS'))).toBe(true);
    expect(r.stdout).toMatch(/tap a card\s+mir 220070\*{6}0041/);
    expect(r.stdout).not.toContain(PAN.student);
    expect(r.stdout).toMatch(/gate opens and closes/);
    expect(r.stdout).toMatch(/school:7 v\d+ \(1 entries\)/);
    await host.remove(slot.port);
    await sim!.waitFor((m) => m.type === 'command' && m.command?.type === 'open', 'OPEN from the check');
  }, 90_000);

  it('rc-device run --config DIR/device.json syncs, opens the gate for the enrolled student, and the tap reaches the server', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'device', 'cli.ts'), 'run', '--config', join(devDir, 'device.json')], {
      cwd: ROOT,
      env: { ...env, RC_LOG_LEVEL: 'info', RC_DEV_TOKEN_KEY: '1' }, // the rig's server hands out the development key: allowed for tests only
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    device = child;
    createInterface({ input: child.stderr! }).on('line', (l) => deviceLog.push(l));
    const sock = join(devDir, 'rc-device.sock');
    const ready = await waitFor(
      async () => {
        const s = await queryStatus(sock, 2000);
        return s.sync.connected && s.readers.some((x) => x.name === slot.readerName) ? s : null;
      },
      { timeoutMs: 40_000, what: 'device running and connected', everyMs: 50 },
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${deviceLog.slice(-15).join('\n')}`);
    });
    expect(ready.lists.find((l) => l.scope === 'school:7')?.version).toBeGreaterThan(0);
    const before = ready.taps;
    const opens = sim!.opens().length;
    await host.insert(slot.port, mirSpec(PAN.student));
    const s = await waitFor(
      async () => {
        const x: StatusReply = await queryStatus(sock, 2000);
        return x.taps > before ? x : null;
      },
      { timeoutMs: 20_000, what: 'a tap', everyMs: 50 },
    );
    await host.remove(slot.port);
    expect(s.lastTap).toMatchObject({ result: 'allow', gate: 'open-entry', maskedPan: '220070******0041' });
    await sim!.waitFor(() => sim!.opens().length > opens, 'OPEN from the device');
    const journal = await waitFor(
      async () => {
        const r = await operatorFetch({ httpUrl: serverUrl, dataDir: join(base, 'server') }, `/v1/journal?device=${deviceId}`);
        const j = (await r.json()) as { entries: { result: string; token: string }[] };
        return j.entries.some((e) => e.result === 'allow') ? j.entries : null;
      },
      { timeoutMs: 15_000, what: 'the tap in the server journal', everyMs: 50 },
    );
    expect(JSON.stringify(journal)).not.toContain(PAN.student);
    // check refuses to run beside a running device (it would take its reader and broker identity)
    const c = await cli('provisioning', ['check', '--dir', devDir, '--json']);
    expect(c.code).toBe(1);
    expect(JSON.parse(c.stdout)).toMatchObject({ ok: false, items: [{ id: 'config', ok: false, code: 'runtime.already-running' }] });
    expect((await queryStatus(sock, 2000)).sync.connected).toBe(true);
  }, 90_000);

  it('the operator revokes the device: it is disconnected at once, and check then fails with coded errors', async () => {
    const sock = join(devDir, 'rc-device.sock');
    const r = await cli('sync-server', ['device', 'revoke', deviceId, '--server', serverUrl]);
    expect(r.code, r.stderr).toBe(0);
    await waitFor(async () => !(await queryStatus(sock, 2000)).sync.connected, { timeoutMs: 5000, what: 'device disconnected', everyMs: 50 });
    const st = (await (await operatorFetch({ httpUrl: serverUrl, dataDir: join(base, 'server') }, '/v1/status')).json()) as {
      devices: { id: string; online: boolean }[];
    };
    expect(st.devices.find((d) => d.id === deviceId)?.online).toBe(false);
    await stopChild(device);
    device = null;
    const c = await cli('provisioning', ['check', '--dir', devDir, '--json', '--skip', 'reader,card,peripherals', '--sync-timeout', '5']);
    expect(c.code).toBe(1);
    const rep = JSON.parse(c.stdout) as { ok: boolean; items: { id: string; ok: boolean; code?: string }[] };
    expect(rep.ok).toBe(false);
    expect(rep.items.find((i) => i.id === 'server')).toMatchObject({ ok: false, code: 'provision.device-revoked' });
    expect(rep.items.find((i) => i.id === 'broker')).toMatchObject({ ok: false, code: 'provision.broker-refused' });
  }, 60_000);
});
