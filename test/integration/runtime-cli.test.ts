/**
 * `rc-device run` and `rc-device status` as processes: config refusals with
 * their codes and exit codes, the status socket, a second instance refused,
 * SIGTERM → exit 0. No pcscd here (the device must run without it and say so).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, startDeviceProc, type DeviceProc } from '../e2e/runtime-rig.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-rt-cli-'));
// a PC/SC socket that does not exist: never talk to a system pcscd
const env: NodeJS.ProcessEnv = { ...process.env, PCSCLITE_CSOCK_NAME: join(dir, 'no-pcscd.comm') };
delete env.RC_TOKEN_KEY;
delete env.RC_TOKEN_KEY_VERSION;
let dev: DeviceProc | null = null;

afterAll(async () => {
  await dev?.kill();
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'device', 'cli.ts'), ...args], {
      cwd: ROOT,
      env: { ...env, RC_DEV_TOKEN_KEY: '1', ...extraEnv }, // the rig's configs carry no key: the public development key, allowed for tests only
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

const busConfig = {
  schema: 1,
  device: { id: 'bus-cli', kind: 'bus', route: '7' },
  tariff: { routes: { '7': { fullFareKopecks: 3500 } } },
  peripherals: [{ kind: 'console' }],
};

describe('rc-device run / status as processes', () => {
  it('a config newer than the software is refused with config.too-new (exit 2), nothing created', async () => {
    const d = mkdtempSync(join(dir, 'new-'));
    const f = join(d, 'device.json');
    writeFileSync(f, JSON.stringify({ ...busConfig, schema: 99 }));
    const r = await cli(['run', '--config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('config.too-new');
    expect(existsSync(join(d, 'device.sqlite'))).toBe(false);
  });

  it('a missing config is config.not-found; an invalid token key from the environment is token.key-invalid (exit 2)', async () => {
    const r = await cli(['run', '--config', join(dir, 'nope.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('config.not-found');
    const d = mkdtempSync(join(dir, 'key-'));
    const f = join(d, 'device.json');
    writeFileSync(f, JSON.stringify(busConfig));
    const k = await cli(['run', '--config', f], { RC_TOKEN_KEY: 'not-hex' });
    expect(k.code).toBe(2);
    expect(k.stderr).toContain('token.key-invalid');
  });

  it('status with nothing running: runtime.not-running, exit 3 (and as JSON)', async () => {
    const r = await cli(['status', '--socket', join(dir, 'none.sock')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('runtime.not-running');
    const j = await cli(['status', '--json', '--socket', join(dir, 'none.sock')]);
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toMatchObject({ error: 'runtime.not-running' });
  });

  it('runs without pcscd and says so in status; a second instance is refused (exit 3); SIGTERM exits 0', async () => {
    const d = mkdtempSync(join(dir, 'run-'));
    dev = await startDeviceProc(busConfig, d, env);
    const s = await dev.waitStatus((x) => x.pcsc === 'down', 'PC/SC reported down');
    expect(s.peripherals[0]).toMatchObject({ kind: 'console', health: { status: 'ok' } });
    const cfgFile = join(d, 'device.json');
    const human = await cli(['status', '--config', cfgFile]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('bus-cli (bus, route 7)');
    expect(human.stdout).toContain('PC/SC service: down');
    expect(human.stdout).toContain('backlog 0');
    const json = await cli(['status', '--json', '--config', cfgFile]);
    expect(JSON.parse(json.stdout)).toMatchObject({ device: { id: 'bus-cli' }, pcsc: 'down', journal: { backlog: 0 }, sync: { configured: false } });
    const second = await cli(['run', '--config', cfgFile]);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain('runtime.already-running');
    expect(await dev.terminate()).toBe(0);
    expect(dev.logs.some((l) => l.includes('"code":"reader.pcsc-unavailable"'))).toBe(true);
    dev = null;
  });
});
