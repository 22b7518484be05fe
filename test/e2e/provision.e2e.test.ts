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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryStatus, type StatusReply } from '../../device/runtime/status.js';
import { seedServer } from '../support/provision-rig.js';
import { PcscdRig, type VpcdSlot } from '../support/rig/pcscd.js';
import { Procs, stopChild } from '../support/rig/procs.js';
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

/** The student's card and her place at school 7, as the operator imports them. */
const REGISTRY = {
  cards: `person_id,pan,psn,expiry\nP-TIMUR,${PAN.student},01,2029-06\n`,
  enrolments: 'person_id,school_id,role,grade,meal_category,valid_from,valid_to\nP-TIMUR,7,student,5,,2020-01-01,2030-12-31\n',
};

const procs = new Procs();

let pcscd: PcscdRig;
let slot: VpcdSlot;
let host: VcardHost;
let pty: PtyPair;
let sim: SimProc | null = null;
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
    const env = (procs.env = pcscd.clientEnv());
    delete env.RC_TOKEN_KEY;
    delete env.RC_SYNC_PASSWORD;
    env.RC_LOG_LEVEL = 'warn';
    env.RC_API_TOKEN_FILE = join(base, 'server', 'admin.token'); // the CLI runs below call the server as its admin
    host = await VcardHost.start();
    pty = await createPtyPair();
    sim = await startSim(pty.b);
    // the operator's server, as a process
    ({ httpUrl: serverUrl } = await procs.startServer(['start', '--dev-token-key', '--data', join(base, 'server'), '--mqtt-port', '0', '--http-port', '0']));
    await seedServer(procs, base, RULES, REGISTRY, ['--server', serverUrl]);
  }, 120_000);

  afterAll(async () => {
    await stopChild(device);
    await procs.stopAll();
    await sim?.stop().catch(() => undefined);
    await host?.close().catch(() => undefined);
    await pcscd?.dispose().catch(() => undefined);
    await pty?.close().catch(() => undefined);
    if (base) rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it('the operator creates a one-time token; the technician runs init; the token is then spent', async () => {
    const t = await procs.run('sync-server', ['enrol-token', 'create', '--kind', 'turnstile', '--school', '7', '--ttl', '1h', '--json', '--server', serverUrl]);
    expect(t.code, t.stderr).toBe(0);
    const token = (JSON.parse(t.stdout) as { token: string }).token;
    const plain = await procs.run('sync-server', ['enrol-token', 'create', '--kind', 'bus', '--route', '7', '--server', serverUrl]);
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
    const r = await procs.run('provisioning', initArgs);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    deviceId = (JSON.parse(r.stdout) as { deviceId: string }).deviceId;
    expect(deviceId).toMatch(/^turnstile-/);

    const again = await procs.run('provisioning', [...initArgs.slice(0, -3), '--dir', join(base, 'second'), '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout)).toMatchObject({ error: { code: 'provision.token-used' } });

    const list = await procs.run('sync-server', ['device', 'list', '--json', '--server', serverUrl]);
    expect(JSON.parse(list.stdout)).toMatchObject({ devices: [{ id: deviceId, kind: 'turnstile', school: '7', direction: 'entry', revokedAt: null }] });
  }, 90_000);

  it('check passes: reader, a tapped virtual card (scheme + masked PAN), the gate opens and closes, broker, first sync, disk, clock', async () => {
    let tapped = false;
    const r = await procs.run('provisioning', ['check', '--dir', devDir, '--card-timeout', '30', '--sync-timeout', '60'], {
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
      env: { ...procs.env, RC_LOG_LEVEL: 'info', RC_DEV_TOKEN_KEY: '1' }, // the rig's server hands out the development key: allowed for tests only
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
    const c = await procs.run('provisioning', ['check', '--dir', devDir, '--json']);
    expect(c.code).toBe(1);
    expect(JSON.parse(c.stdout)).toMatchObject({ ok: false, items: [{ id: 'config', ok: false, code: 'runtime.already-running' }] });
    expect((await queryStatus(sock, 2000)).sync.connected).toBe(true);
  }, 90_000);

  it('the operator revokes the device: it is disconnected at once, and check then fails with coded errors', async () => {
    const sock = join(devDir, 'rc-device.sock');
    const r = await procs.run('sync-server', ['device', 'revoke', deviceId, '--server', serverUrl]);
    expect(r.code, r.stderr).toBe(0);
    await waitFor(async () => !(await queryStatus(sock, 2000)).sync.connected, { timeoutMs: 5000, what: 'device disconnected', everyMs: 50 });
    const st = (await (await operatorFetch({ httpUrl: serverUrl, dataDir: join(base, 'server') }, '/v1/status')).json()) as {
      devices: { id: string; online: boolean }[];
    };
    expect(st.devices.find((d) => d.id === deviceId)?.online).toBe(false);
    await stopChild(device);
    device = null;
    const c = await procs.run('provisioning', ['check', '--dir', devDir, '--json', '--skip', 'reader,card,peripherals', '--sync-timeout', '5']);
    expect(c.code).toBe(1);
    const rep = JSON.parse(c.stdout) as { ok: boolean; items: { id: string; ok: boolean; code?: string }[] };
    expect(rep.ok).toBe(false);
    expect(rep.items.find((i) => i.id === 'server')).toMatchObject({ ok: false, code: 'provision.device-revoked' });
    expect(rep.items.find((i) => i.id === 'broker')).toMatchObject({ ok: false, code: 'provision.broker-refused' });
  }, 60_000);
});
