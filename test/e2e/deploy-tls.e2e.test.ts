/**
 * The documented deployment (deploy/README.md, deploy/rc-sync-server.service), as processes from dist/:
 * the server started with the unit's own command line (paths and ports moved into a temp dir) on a
 * non-loopback address of this machine; `rc-provision init` over https, trusting the CA pinned in the
 * token; `rc-device run` connecting over mqtts with the CA it got at enrolment, a tap reaching the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryStatus } from '../../device/runtime/status.js';
import { splitEnrolToken } from '../../protocol/tls-pin.js';
import { PAN, mirSpec } from '../support/pans.js';
import { seedServer } from '../support/provision-rig.js';
import { PcscdRig, type VpcdSlot } from '../support/rig/pcscd.js';
import { Procs, stopChild } from '../support/rig/procs.js';
import { freePort } from '../support/rig/broker.js';
import { VcardHost } from '../support/rig/vcards.js';
import { waitFor } from '../support/wait.js';
import { ROOT } from './runtime-rig.js';

const DIST = join(ROOT, 'dist');
const RULES = { schema: 1, tariff: { routes: { '7': { fullFareKopecks: 3500 } }, benefits: { pensioner: { kind: 'free' } } } };

/** An address of this machine other than loopback (devices are elsewhere); 127.0.0.2 when it has none. */
function publicAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.2';
}

/** The pensioner's card and her benefit, as the operator imports them. */
const REGISTRY = {
  cards: `person_id,pan,psn,expiry\nP-ANNA,${PAN.pensioner},01,2029-06\n`,
  benefits: 'person_id,category,valid_from,valid_to\nP-ANNA,pensioner,2020-01-01,2030-12-31\n',
};
const procs = new Procs({}, { dist: true });

/** The unit's ExecStart arguments (after the program), one line in the unit file. */
function unitArgs(): string[] {
  const unit = readFileSync(join(ROOT, 'deploy', 'rc-sync-server.service'), 'utf8');
  const line = unit.split('\n').find((l) => l.startsWith('ExecStart='))!;
  const [node, bin, ...args] = line.slice('ExecStart='.length).trim().split(/\s+/);
  expect(node).toBe('/usr/bin/node');
  expect(bin).toBe('/opt/resident-card/dist/rc-sync-server.js');
  return args;
}

describe.skipIf(!existsSync(join(DIST, 'rc-sync-server.js')))('the documented deployment, as processes (mqtts, https enrolment, pinned CA)', () => {
  const addr = publicAddress();
  let base: string;
  let pcscd: PcscdRig;
  let slot: VpcdSlot;
  let host: VcardHost;
  let device: ChildProcess | undefined;
  const deviceLog: string[] = [];
  let httpUrl = '';
  let enrolUrl = '';
  let devDir = '';
  let deviceId = '';

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-deploy-tls-'));
    pcscd = await PcscdRig.create({ friendlyName: 'RC Deploy PCD' });
    slot = pcscd.slots[0]!;
    host = await VcardHost.start();
    const env = (procs.env = pcscd.clientEnv());
    env.RC_LOG_LEVEL = 'warn';
    delete env.RC_DEV_TOKEN_KEY;
    // the unit's EnvironmentFile: where devices reach the server, and the card-token key
    env.RC_PUBLIC_HOST = addr;
    env.RC_TOKEN_KEY = randomBytes(32).toString('hex');
    env.RC_TOKEN_KEY_VERSION = '1';

    // certificates as deploy/README.md makes them
    const tls = await procs.run('sync-server', ['tls', 'init', '--dir', join(base, 'tls'), '--san', addr]);
    expect(tls.code, tls.stderr).toBe(0);

    // the unit's command line: paths into the temp dir, fixed ports onto free ones, ${RC_PUBLIC_HOST} as systemd expands it
    const ports = new Map<string, string>();
    for (const p of ['1883', '7300', '8883', '7301']) ports.set(p, String(await freePort()));
    const args = unitArgs().map((a) =>
      a
        .replaceAll('/var/lib/rc-sync-server', join(base, 'data'))
        .replaceAll('/etc/resident-card/tls', join(base, 'tls'))
        .replaceAll('${RC_PUBLIC_HOST}', addr)
        .replace(/^(\d+)$/, (p) => ports.get(p) ?? p)
        .replace(/:(\d+)$/, (m, p: string) => (ports.has(p) ? `:${ports.get(p)}` : m)),
    );
    expect(args).toContain('--broker-listen');
    ({ httpUrl, enrolUrl } = await procs.startServer(args, { enrol: true, stderr: 'pipe', timeoutMs: 60_000 }));
    await seedServer(procs, base, RULES, REGISTRY, ['--server', httpUrl, '--data', join(base, 'data')]);
  }, 180_000);

  afterAll(async () => {
    await stopChild(device);
    await procs.stopAll();
    await host?.close().catch(() => undefined);
    await pcscd?.dispose().catch(() => undefined);
    if (base) rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it('the server listens for devices on the public address only over TLS; plain MQTT and the operator API stay on loopback', () => {
    expect(enrolUrl.startsWith('https://')).toBe(true);
    expect(new URL(httpUrl).hostname).toBe('127.0.0.1');
  });

  it('rc-provision init over https trusts the CA pinned in the token; the device gets mqtts and the broker CA', async () => {
    const t = await procs.run('sync-server', ['enrol-token', 'create', '--kind', 'bus', '--route', '7', '--server', httpUrl, '--data', join(base, 'data')]);
    expect(t.code, t.stderr).toBe(0);
    const token = t.stdout.trim();
    expect(splitEnrolToken(token).pin).toMatch(/^[A-Za-z0-9_-]{43}$/);
    devDir = join(base, 'rc-device');
    const server = `https://${addr}:${new URL(enrolUrl).port}`;
    const r = await procs.run('provisioning', [
      'init',
      '--server',
      server,
      '--enrol-token',
      token,
      '--kind',
      'bus',
      '--route',
      '7',
      '--vehicle',
      'A1',
      '--reader',
      slot.readerName,
      '--dir',
      devDir,
      '--json',
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { deviceId: string; brokerUrl: string };
    deviceId = out.deviceId;
    expect(out.brokerUrl).toMatch(new RegExp(`^mqtts://${addr.replaceAll('.', '\\.')}:\\d+$`));
    const cfg = JSON.parse(readFileSync(join(devDir, 'device.json'), 'utf8')) as { sync: { ca?: string } };
    expect(cfg.sync.ca).toBe(readFileSync(join(base, 'tls', 'ca.crt'), 'utf8'));
    // the technician's self-test goes the same ways: whoami over the pinned https, the broker over mqtts, a first sync
    const check = await procs.run('provisioning', ['check', '--dir', devDir, '--skip', 'card', '--sync-timeout', '60', '--json'], { timeoutMs: 120_000 });
    const items = (JSON.parse(check.stdout) as { items: { id: string; ok: boolean; detail: string }[] }).items;
    for (const id of ['server', 'broker', 'sync'])
      expect(
        items.find((i) => i.id === id),
        JSON.stringify(items),
      ).toMatchObject({ ok: true });
  }, 180_000);

  it('rc-device run connects over mqtts and a tap reaches the server', async () => {
    device = procs.track(
      spawn(process.execPath, [join(DIST, 'rc-device.js'), 'run', '--config', join(devDir, 'device.json')], {
        cwd: ROOT,
        env: { ...procs.env, RC_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    createInterface({ input: device.stderr! }).on('line', (l) => deviceLog.push(l));
    const socket = join(devDir, 'rc-device.sock');
    const ready = await waitFor(
      async () => {
        const s = await queryStatus(socket, 2000).catch(() => null);
        return s && s.sync.connected && s.lists.some((l) => l.scope === 'transit') && s.readers.some((r) => r.state === 'idle') ? s : null;
      },
      { timeoutMs: 60_000, what: `the device connected over mqtts with its lists (log: ${deviceLog.slice(-5).join(' | ')})`, everyMs: 200 },
    );
    expect(ready.sync.connected).toBe(true);
    await host.insert(slot.port, mirSpec(PAN.pensioner));
    const tapped = await waitFor(
      async () => {
        const s = await queryStatus(socket, 2000);
        return s.taps > 0 ? s : null;
      },
      { timeoutMs: 30_000, what: 'a tap' },
    );
    await host.remove(slot.port);
    expect(tapped.lastTap).toMatchObject({ result: 'allow', benefit: 'pensioner' });
    const entries = await waitFor(
      async () => {
        const r = await procs.run('sync-server', ['journal', '--device', deviceId, '--json', '--server', httpUrl, '--data', join(base, 'data')]);
        const e = (JSON.parse(r.stdout) as { entries: { device: string; benefit: string | null }[] }).entries;
        return e.length > 0 ? e : null;
      },
      { timeoutMs: 30_000, what: 'the tap in the server journal', everyMs: 500 },
    );
    expect(entries[0]).toMatchObject({ device: deviceId, benefit: 'pensioner' });
    expect(deviceLog.join('\n')).not.toContain(PAN.pensioner);
  }, 150_000);
});
