/**
 * Accounts from the built CLI (dist/rc-sync-server.js; `npm run build` first), the way an operator uses it:
 * the first start creates the admin (password printed once) and DATA/admin.token (0600); the HTTP commands
 * work with no credential flag; user add/passwd/disable change who can sign in; a restart revokes the old
 * admin token; every account change is in the audit log, also from the CLI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { withTestDatabase } from '../support/test-db.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'rc-sync-server.js');
let dir = '';
let server: ChildProcess | null = null;
let httpUrl = '';
let startOut: string[] = [];
const env: NodeJS.ProcessEnv = { ...process.env, RC_LOG_LEVEL: 'warn' };
delete env.RC_API_TOKEN;
delete env.RC_API_TOKEN_FILE;

/** Run the built CLI in `dir` (so ./rc-sync-data is the server's data dir), optionally feeding stdin. */
function cli(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...withTestDatabase(args, dir)], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function start(): Promise<void> {
  startOut = [];
  const s = spawn(process.execPath, [BIN, ...withTestDatabase(['start', '--dev-token-key', '--mqtt-port', '0', '--http-port', '0'], dir)], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  server = s;
  httpUrl = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('sync-server did not start')), 45_000);
    createInterface({ input: s.stdout }).on('line', (l) => {
      startOut.push(l);
      const m = /HTTP (http:\/\/127\.0\.0\.1:\d+)/.exec(l);
      if (m) httpUrl = m[1]!;
      if (l.includes('admin API token')) {
        clearTimeout(t);
        resolve(httpUrl);
      }
    });
  });
}

async function stop(): Promise<void> {
  const s = server;
  server = null;
  if (!s || s.exitCode !== null) return;
  const gone = new Promise((r) => s.once('exit', r));
  s.kill('SIGTERM');
  await gone;
}

const login = (username: string, password: string) =>
  fetch(`${httpUrl}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });

describe.skipIf(!existsSync(BIN))('accounts from the built CLI', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rc-auth-cli-'));
    await start();
  }, 60_000);
  afterAll(async () => {
    await stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the first start prints the admin password once and writes DATA/admin.token 0600; the CLI works with no credential flag', async () => {
    const line = startOut.find((l) => l.includes('first account created'));
    const password = /password (\S+)/.exec(line ?? '')?.[1];
    expect(password, startOut.join('\n')).toMatch(/^\w{20}$/);
    expect((await login('admin', password!)).status).toBe(200);
    const file = join(dir, 'rc-sync-data', 'admin.token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const s = await cli(['status', '--server', httpUrl, '--json']);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toHaveProperty('devices');
    // without a token anywhere, the CLI says how to give one
    const other = mkdtempSync(join(tmpdir(), 'rc-auth-cli-none-'));
    try {
      const n = await cli(['status', '--server', httpUrl, '--data', other, '--json']);
      expect(n.code).toBe(1);
      expect(JSON.parse(n.stdout)).toMatchObject({ error: { code: ErrorCode.AuthNoCredentials } });
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }, 60_000);

  it('user add, passwd and disable change who can sign in; the password never reaches the audit log', async () => {
    const add = await cli(['user', 'add', 'kim', '--role', 'school', '--school', 'S4']);
    expect(add.code, add.stderr).toBe(0);
    const generated = add.stdout.trim();
    expect(generated).toMatch(/^\w{20}$/);
    expect(await (await login('kim', generated)).json()).toMatchObject({ user: { name: 'kim', role: 'school', school: 'S4' } });

    const chosen = 'a new password for kim';
    const pw = await cli(['user', 'passwd', 'kim', '--password-stdin'], chosen + '\n');
    expect(pw.code, pw.stderr).toBe(0);
    expect((await login('kim', generated)).status).toBe(401);
    expect((await login('kim', chosen)).status).toBe(200);

    const list = await cli(['user', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toMatchObject({ users: expect.arrayContaining([expect.objectContaining({ name: 'kim', role: 'school', school: 'S4' })]) });

    expect((await cli(['user', 'disable', 'kim'])).code).toBe(0);
    expect((await login('kim', chosen)).status).toBe(401);
    const dup = await cli(['user', 'add', 'kim', '--role', 'operator', '--json']);
    expect(dup.code).toBe(1);
    expect(JSON.parse(dup.stdout)).toMatchObject({ error: { code: ErrorCode.AuthUserExists } });

    const audit = await cli(['audit', '--json']);
    const rows = (JSON.parse(audit.stdout) as { rows: { action: string; source: string; detail: { name?: string }; result: string }[] }).rows;
    for (const action of ['user.add', 'user.passwd', 'user.disable'])
      expect(rows.some((r) => r.action === action && r.source === 'local' && r.detail.name === 'kim' && r.result === 'ok')).toBe(true);
    expect(rows.some((r) => r.action === 'user.add' && r.result === ErrorCode.AuthUserExists)).toBe(true);
    expect(audit.stdout).not.toContain(generated);
    expect(audit.stdout).not.toContain(chosen);
    const csv = await cli(['audit', '--csv', '--action', 'user.']);
    expect(csv.stdout.split('\r\n')[0]).toBe('seq,time,who,role,source,action,detail,result');
  }, 90_000);

  it('token create and revoke: a revoked token is refused at once; a restart revokes the old admin token', async () => {
    const c = await cli(['token', 'create', '--role', 'auditor', '--name', 'prometheus']);
    expect(c.code, c.stderr).toBe(0);
    const token = c.stdout.trim();
    const metrics = () => fetch(`${httpUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect((await metrics()).status).toBe(200);
    const id = /^rcat_([0-9a-f]{12})_/.exec(token)![1]!;
    expect((await cli(['token', 'revoke', id])).code).toBe(0);
    expect((await metrics()).status).toBe(401);

    const old = readFileSync(join(dir, 'rc-sync-data', 'admin.token'), 'utf8').trim();
    await stop();
    await start();
    expect(startOut.some((l) => l.includes('first account created'))).toBe(false);
    const fresh = readFileSync(join(dir, 'rc-sync-data', 'admin.token'), 'utf8').trim();
    expect(fresh).not.toBe(old);
    expect((await fetch(`${httpUrl}/v1/status`, { headers: { authorization: `Bearer ${old}` } })).status).toBe(401);
    const s = await cli(['status', '--server', httpUrl, '--json']);
    expect(s.code, s.stderr).toBe(0);
  }, 120_000);
});
