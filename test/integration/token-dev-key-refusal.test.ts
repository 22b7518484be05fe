/**
 * No development key outside the demo: `rc-device run` and `rc-sync-server start`
 * as processes refuse the public development key with token.dev-key-refused
 * unless --dev-token-key says this is a demo or a test.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { ROOT } from '../e2e/runtime-rig.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-devkey-'));
const env: NodeJS.ProcessEnv = { ...process.env, PCSCLITE_CSOCK_NAME: join(dir, 'no-pcscd.comm') };
delete env.RC_TOKEN_KEY;
delete env.RC_TOKEN_KEY_VERSION;
delete env.RC_DEV_TOKEN_KEY;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cli: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, cli), ...args], {
      cwd: ROOT,
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    c.once('exit', (code) => resolve({ code, stderr }));
  });
}

const busConfig = (tokenKey?: unknown) => ({
  schema: 1,
  device: { id: 'bus-devkey', kind: 'bus', route: '7' },
  tariff: { routes: { '7': { fullFareKopecks: 3500 } } },
  ...(tokenKey ? { tokenKey } : {}),
  runtime: { dataDir: dir, statusSocket: join(dir, 'rc.sock') },
});

describe('the public development key is refused outside the demo', () => {
  it('rc-device run: no key configured, or the development key configured, exits 2 with token.dev-key-refused', async () => {
    const none = join(dir, 'none.json');
    writeFileSync(none, JSON.stringify(busConfig()));
    const a = await run('device/cli.ts', ['run', '--config', none]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('token.dev-key-refused');
    const dev = join(dir, 'dev.json');
    writeFileSync(dev, JSON.stringify(busConfig({ version: 0, hex: DEV_TOKEN_KEY.key.toString('hex') })));
    const b = await run('device/cli.ts', ['run', '--config', dev]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('token.dev-key-refused');
    expect(b.stderr).not.toContain(DEV_TOKEN_KEY.key.toString('hex'));
  }, 60_000);

  it('rc-sync-server start: without --pkcs11-* or RC_TOKEN_KEY, or with the development key as RC_TOKEN_KEY, exits 1 with token.dev-key-refused', async () => {
    const args = ['start', '--data', join(dir, 'srv'), '--mqtt-port', '0', '--http-port', '0'];
    const a = await run('sync-server/cli.ts', args);
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('token.dev-key-refused');
    const b = await run('sync-server/cli.ts', args, { RC_TOKEN_KEY: DEV_TOKEN_KEY.key.toString('hex') });
    expect(b.code).toBe(1);
    expect(b.stderr).toContain('token.dev-key-refused');
    // half a token location is a config error, not a silent fallback
    const c = await run('sync-server/cli.ts', [...args, '--pkcs11-library', '/usr/lib/softhsm/libsofthsm2.so']);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('config.invalid');
  }, 60_000);
});
