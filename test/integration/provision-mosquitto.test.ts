/**
 * The Mosquitto set-up exactly as docs/provisioning.md tells the operator, as
 * processes: Mosquitto started with password_file + acl_file + pid_file and
 * allow_anonymous false; `rc-sync-server start --broker … --mosquitto-passwd …
 * --mosquitto-acl … --mosquitto-pid-file … --enrol-listen …`; a technician's
 * `rc-provision init` against the device-facing enrolment listener; `check`
 * reaches the broker and syncs; `device revoke` rewrites the files, SIGHUPs
 * Mosquitto and the device is refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitPort } from '../support/rig/broker.js';
import { RULES } from '../support/provision-rig.js';
import { MAX_MQTT_PACKET } from '../../protocol/wire/mqtt-guard.js';

const ROOT = join(import.meta.dirname, '..', '..');
const children = new Set<ChildProcess>();
let base: string;
let mosq: ChildProcess;
let server: ChildProcess;
let httpUrl = '';
let enrolUrl = '';
let deviceId = '';
const env: NodeJS.ProcessEnv = { ...process.env, RC_LOG_LEVEL: 'warn' };
delete env.RC_TOKEN_KEY;

function cli(program: 'sync-server' | 'provisioning', args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, program, 'cli.ts'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('close', (code) => {
      clearTimeout(t);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

async function stop(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

describe('provisioning with an external Mosquitto, set up as documented', () => {
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-prov-mosq-'));
    const port = await freePort();
    const f = (n: string) => join(base, n);
    env.RC_API_TOKEN_FILE = f('data/admin.token'); // the CLI runs below call the server as its admin
    // step 1: empty files (the server fills them), Mosquitto's config
    writeFileSync(f('passwd'), '', { mode: 0o640 });
    writeFileSync(f('acl'), '', { mode: 0o640 });
    writeFileSync(
      f('mosquitto.conf'),
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${f('passwd')}`,
        `acl_file ${f('acl')}`,
        `pid_file ${f('mosquitto.pid')}`,
        'persistence false',
        `max_packet_size ${MAX_MQTT_PACKET}`,
        'set_tcp_nodelay true',
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        '',
      ].join('\n'),
    );
    mosq = spawn('mosquitto', ['-c', f('mosquitto.conf')], { stdio: 'ignore' });
    children.add(mosq);
    await waitPort(port);
    // step 2: the server writes both files and SIGHUPs Mosquitto
    const enrolPort = await freePort();
    server = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'sync-server', 'cli.ts'),
        'start',
        '--dev-token-key', // the public development key: tests only
        '--data',
        f('data'),
        '--broker',
        `mqtt://127.0.0.1:${port}`,
        '--mosquitto-passwd',
        f('passwd'),
        '--mosquitto-acl',
        f('acl'),
        '--mosquitto-pid-file',
        f('mosquitto.pid'),
        '--http-port',
        '0',
        '--enrol-listen',
        `127.0.0.1:${enrolPort}`,
      ],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    children.add(server);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('sync-server did not start')), 30_000);
      createInterface({ input: server.stdout! }).on('line', (l) => {
        const h = /HTTP (http:\/\/127\.0\.0\.1:\d+)/.exec(l);
        if (h) httpUrl = h[1]!;
        const e = /device enrolment on (http:\/\/\S+)/.exec(l);
        if (e) enrolUrl = e[1]!;
        if (httpUrl && enrolUrl) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    writeFileSync(f('rules.json'), JSON.stringify(RULES));
    writeFileSync(f('cards.csv'), 'person_id,pan,psn,expiry\nP-1,2200700000000017,01,2029-06\nP-2,2200700000000025,01,2029-06\n');
    for (const a of [
      ['config', 'set', f('rules.json')],
      ['import', 'cards', f('cards.csv')],
    ]) {
      const r = await cli('sync-server', [...a, '--server', httpUrl]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 90_000);

  afterAll(async () => {
    for (const c of [...children]) await stop(c);
    if (base) rmSync(base, { recursive: true, force: true });
  }, 30_000);

  it('the server wrote the password file (hashes only) and the ACL; the operator API is not on the enrolment listener', async () => {
    const pw = readFileSync(join(base, 'passwd'), 'utf8');
    // the server's users, one per purpose (issue 13 item 9): the publisher and the ingest, each with only its topics
    expect(pw).toMatch(/^rc-sync-server-publisher:\$7\$101\$/m);
    expect(pw).toMatch(/^rc-sync-server-ingest:\$7\$101\$/m);
    expect(statSync(join(base, 'passwd')).mode & 0o777).toBe(0o640);
    const acl = readFileSync(join(base, 'acl'), 'utf8');
    expect(acl).toContain('user rc-sync-server-publisher\ntopic write rc/v1/lists/#\ntopic write rc/v1/config/#\ntopic write rc/v1/usage/#\n');
    expect(acl).toContain('user rc-sync-server-ingest\ntopic read rc/v1/device/+/journal\n');
    expect(acl).not.toContain('readwrite');
    const r = await fetch(`${enrolUrl}/v1/enrol-tokens`, { method: 'POST', body: JSON.stringify({ kind: 'bus', ttlSec: 3600 }) });
    expect(r.status).toBe(404);
    const rv = await fetch(`${enrolUrl}/v1/devices/x/revoke`, { method: 'POST' });
    expect(rv.status).toBe(404);
  });

  it('init through the enrolment listener; check: the broker takes the credentials and the first sync completes', async () => {
    const t = await cli('sync-server', ['enrol-token', 'create', '--kind', 'bus', '--route', '7', '--server', httpUrl]);
    expect(t.code, t.stderr).toBe(0);
    const dir = join(base, 'dev');
    const r = await cli('provisioning', [
      'init',
      '--server',
      enrolUrl,
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
    deviceId = (JSON.parse(r.stdout) as { deviceId: string }).deviceId;
    expect(readFileSync(join(base, 'acl'), 'utf8')).toContain(`user ${deviceId}\ntopic write rc/v1/device/${deviceId}/journal`);
    const c = await cli('provisioning', ['check', '--dir', dir, '--json', '--skip', 'reader,card,peripherals', '--sync-timeout', '30']);
    const rep = JSON.parse(c.stdout) as { ok: boolean; items: { id: string; ok: boolean; detail: string }[] };
    if (!rep.ok) console.log(c.stdout, c.stderr);
    expect(rep.items.map((i) => [i.id, i.ok])).toEqual([
      ['config', true],
      ['disk', true],
      ['server', true],
      ['clock', true],
      ['broker', true],
      ['sync', true],
    ]);
    expect(rep.items.find((i) => i.id === 'sync')?.detail).toContain('transit v1 (2 entries)');
    expect(c.code).toBe(0);
  }, 90_000);

  it('revoke removes the device from the password file and Mosquitto refuses it', async () => {
    const r = await cli('sync-server', ['device', 'revoke', deviceId, '--server', httpUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(base, 'passwd'), 'utf8')).not.toContain(`${deviceId}:`);
    const c = await cli('provisioning', ['check', '--dir', join(base, 'dev'), '--json', '--skip', 'reader,card,peripherals', '--sync-timeout', '5']);
    expect(c.code).toBe(1);
    const rep = JSON.parse(c.stdout) as { items: { id: string; ok: boolean; code?: string }[] };
    expect(rep.items.find((i) => i.id === 'broker')).toMatchObject({ ok: false, code: 'provision.broker-refused' });
    expect(rep.items.find((i) => i.id === 'server')).toMatchObject({ ok: false, code: 'provision.device-revoked' });
  }, 60_000);
});
