/**
 * Banks from the built CLI (dist/rc-sync-server.js; `npm run build` first), the way an operator onboards one:
 * `bank add` issues the client certificate (key 0600) and shows the callback secret once; `start --bank-listen`
 * serves the bank API over mutual TLS; the bank connects a card with the files it was given; `bank disable`
 * on the running server's registry refuses the bank's next request; `bank list` shows the certificate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAN } from '../support/pans.js';
import { withTestDatabase } from '../support/test-db.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'rc-sync-server.js');
const env: NodeJS.ProcessEnv = { ...process.env, RC_LOG_LEVEL: 'warn' };
let dir = '';
let server: ChildProcess | null = null;
let bankUrl = '';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...withTestDatabase(args, dir)], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function post(path: string, body: unknown, key: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const u = new URL(bankUrl);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: Number(u.port),
        method: 'POST',
        path,
        agent: false,
        ca: readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8'),
        cert: readFileSync(join(dir, 'for-bank', 'bank-x.crt'), 'utf8'),
        key: readFileSync(join(dir, 'for-bank', 'bank-x.key'), 'utf8'),
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('bank onboarding from the CLI', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rc-bank-cli-'));
    expect((await cli(['tls', 'init', '--dir', 'pki', '--san', '127.0.0.1'])).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    if (server) {
      const s = server;
      server = null;
      await new Promise<void>((res) => {
        s.once('exit', () => res());
        s.kill('SIGTERM');
      });
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('start --bank-listen without TLS material is bank.listener-tls', async () => {
    const r = await cli(['start', '--dev-token-key', '--mqtt-port', '0', '--http-port', '0', '--data', 'no-tls', '--bank-listen', '127.0.0.1:0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toContain('bank.listener-tls');
  }, 60_000);

  it('bank add issues the certificate, the server serves the bank over mutual TLS, bank disable refuses it at once', async () => {
    const add = await cli(['bank', 'add', 'bank-x', '--name', 'Bank X', '--callback', 'https://bank-x.example/rc', '--out', 'for-bank', '--json']);
    expect(add.code).toBe(0);
    const added = JSON.parse(add.stdout) as { id: string; fingerprint: string; callbackSecret: string; files: Record<string, string> };
    expect(added.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(added.callbackSecret.length).toBeGreaterThanOrEqual(40);
    expect(statSync(join(dir, 'for-bank', 'bank-x.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'rc-sync-data', 'bank-ca', 'ca.key')).mode & 0o777).toBe(0o600);
    const dup = await cli(['bank', 'add', 'bank-x', '--name', 'Again', '--json']);
    expect(dup.code).not.toBe(0);
    expect(dup.stdout + dup.stderr).toContain('bank.registry');

    const s = spawn(
      process.execPath,
      [
        BIN,
        ...withTestDatabase(
          [
            'start',
            '--dev-token-key',
            '--mqtt-port',
            '0',
            '--http-port',
            '0',
            '--tls-cert',
            'pki/server.crt',
            '--tls-key',
            'pki/server.key',
            '--tls-ca',
            'pki/ca.crt',
            '--bank-listen',
            '127.0.0.1:0',
          ],
          dir,
        ),
      ],
      { cwd: dir, env, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    server = s;
    bankUrl = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('sync-server did not start')), 45_000);
      createInterface({ input: s.stdout! }).on('line', (l) => {
        const m = /bank API \(mutual TLS\) on (https:\/\/\S+)/.exec(l);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
    });

    const ok = await post('/v1/bank/connections', { applicant: { personId: 'p-1' }, pan: PAN.pensioner, expiry: '12/30' }, 'cli-test-0001');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'accepted', result: 'connected', masked: '220070******0017' });

    const list = await cli(['bank', 'list', '--json']);
    const banks = (JSON.parse(list.stdout) as { banks: { id: string; disabled: boolean; certs: { fingerprint: string }[] }[] }).banks;
    expect(banks).toMatchObject([{ id: 'bank-x', disabled: false, certs: [{ fingerprint: added.fingerprint }] }]);

    expect((await cli(['bank', 'disable', 'bank-x'])).code).toBe(0);
    const refused = await post('/v1/bank/connections', { applicant: { personId: 'p-2' }, pan: PAN.student, expiry: '12/30' }, 'cli-test-0002');
    expect(refused.status).toBe(401);
    expect(refused.body.error).toMatchObject({ code: 'bank.disabled' });
    expect((await cli(['bank', 'enable', 'bank-x'])).code).toBe(0);
    const again = await post('/v1/bank/connections', { applicant: { personId: 'p-2' }, pan: PAN.student, expiry: '12/30' }, 'cli-test-0002');
    expect(again.status).toBe(200);
  }, 120_000);
});
