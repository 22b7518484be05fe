/**
 * rc-provision as the technician runs it (processes): coded errors with what
 * to do, show without secrets, rotate, reset only after confirmation.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDevice } from '../../provisioning/ops.js';
import { startProvStack, type ProvStack } from '../support/provision-rig.js';

const ROOT = join(import.meta.dirname, '..', '..');
const env: NodeJS.ProcessEnv = { ...process.env, RC_LOG_LEVEL: 'warn' };

function rcProvision(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'provisioning', 'cli.ts'), ...args], {
    cwd: ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('rc-provision on the command line', () => {
  let stack: ProvStack;
  let base: string;
  let dir: string;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-prov-cli-'));
    stack = await startProvStack('embedded');
    dir = join(base, 'dev');
    await initDevice({
      server: stack.server.httpUrl,
      token: stack.token('canteen', { school: '12' }).token,
      kind: 'canteen',
      school: '12',
      dir,
      console: true,
    });
  });
  afterAll(async () => {
    await stack?.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('a bad argument or an expired token prints the code and what to do, exit 1, nothing written', async () => {
    const d = join(base, 'other');
    const r = await rcProvision(['init', '--server', stack.server.httpUrl, '--enrol-token', stack.token('bus').token, '--kind', 'tram', '--dir', d]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^input\.invalid: --kind must be bus, turnstile or canteen/);
    const t = stack.token('bus');
    stack.server.db.prepare('UPDATE enrol_tokens SET expires_ms = 0 WHERE id = ?').run(t.id);
    const e = await rcProvision(['init', '--server', stack.server.httpUrl, '--enrol-token', t.token, '--kind', 'bus', '--route', '7', '--dir', d]);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain('provision.token-expired: the enrolment token has expired');
    expect(e.stderr).toContain('what to do: Ask the operator for a new token.');
    expect(existsSync(d)).toBe(false);
  });

  it('show names the device and never prints the password or the token key', async () => {
    const cfg = JSON.parse(readFileSync(join(dir, 'device.json'), 'utf8')) as { sync: { password: string }; tokenKey: { hex: string } };
    const r = await rcProvision(['show', '--dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/device\s+canteen-[0-9a-f]{10} \(canteen, school 12\)/);
    expect(r.stdout).toContain('lists       school:12, stoplist');
    for (const secret of [cfg.sync.password, cfg.tokenKey.hex]) expect(r.stdout).not.toContain(secret);
  });

  it('rotate writes a new password', async () => {
    const before = (JSON.parse(readFileSync(join(dir, 'device.json'), 'utf8')) as { sync: { password: string } }).sync.password;
    const r = await rcProvision(['rotate', '--dir', dir, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const after = (JSON.parse(readFileSync(join(dir, 'device.json'), 'utf8')) as { sync: { password: string } }).sync.password;
    expect(after).not.toBe(before);
  });

  it('reset deletes nothing without confirmation, and wipes keys, database and config with it', async () => {
    const no = await rcProvision(['reset', '--dir', dir], 'no\n');
    expect(no.code).toBe(1);
    expect(no.stderr).toContain('provision.not-confirmed');
    expect(existsSync(join(dir, 'device.json'))).toBe(true);
    const yes = await rcProvision(['reset', '--dir', dir], 'yes\n');
    expect(yes.code, yes.stderr).toBe(0);
    for (const f of ['device.json', 'identity.pem', 'box.pem', 'provision.json']) expect(existsSync(join(dir, f))).toBe(false);
    const show = await rcProvision(['show', '--dir', dir]);
    expect(show.code).toBe(1);
    expect(show.stderr).toContain('provision.not-provisioned');
  });
});
