/**
 * The Mosquitto set-up exactly as docs/provisioning.md tells the operator, as
 * processes: Mosquitto started with password_file + acl_file + pid_file and
 * allow_anonymous false; `rc-sync-server start --broker … --mosquitto-passwd …
 * --mosquitto-acl … --mosquitto-pid-file … --enrol-listen …`; a technician's
 * `rc-provision init` against the device-facing enrolment listener; `check`
 * reaches the broker and syncs; `device revoke` rewrites the files, SIGHUPs
 * Mosquitto and the device is refused.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnFileMosquitto, waitPort } from '../support/rig/broker.js';
import { Procs } from '../support/rig/procs.js';
import { checkNoHardware, initBus, startEnrolServer, NO_HARDWARE_CHECK_PASSED, RULES, seedServer, TWO_CARDS_CSV } from '../support/provision-rig.js';

const procs = new Procs({ ...process.env, RC_LOG_LEVEL: 'warn' }, { graceMs: 5000 });
delete procs.env.RC_TOKEN_KEY;
let base: string;
let httpUrl = '';
let enrolUrl = '';
let deviceId = '';

describe('provisioning with an external Mosquitto, set up as documented', () => {
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-prov-mosq-'));
    const port = await freePort();
    const f = (n: string) => join(base, n);
    procs.env.RC_API_TOKEN_FILE = f('data/admin.token'); // the CLI runs below call the server as its admin
    // step 1: empty files (the server fills them), Mosquitto's config (rig/broker.ts)
    procs.track(spawnFileMosquitto(base, port));
    await waitPort(port);
    // step 2: the server writes both files and SIGHUPs Mosquitto
    ({ httpUrl, enrolUrl } = await startEnrolServer(procs, f('data'), [
      '--broker',
      `mqtt://127.0.0.1:${port}`,
      '--mosquitto-passwd',
      f('passwd'),
      '--mosquitto-acl',
      f('acl'),
      '--mosquitto-pid-file',
      f('mosquitto.pid'),
    ]));
    await seedServer(procs, base, RULES, { cards: TWO_CARDS_CSV }, ['--server', httpUrl]);
  }, 90_000);

  afterAll(async () => {
    await procs.stopAll();
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
    const dir = join(base, 'dev');
    deviceId = await initBus(procs, { httpUrl, enrolUrl }, dir);
    expect(readFileSync(join(base, 'acl'), 'utf8')).toContain(`user ${deviceId}\ntopic write rc/v1/device/${deviceId}/journal`);
    const { run: c, report: rep } = await checkNoHardware(procs, dir, 30);
    if (!rep.ok) console.log(c.stdout, c.stderr);
    expect(rep.items.map((i) => [i.id, i.ok])).toEqual(NO_HARDWARE_CHECK_PASSED);
    expect(rep.items.find((i) => i.id === 'sync')?.detail).toContain('transit v1 (2 entries)');
    expect(c.code).toBe(0);
  }, 90_000);

  it('revoke removes the device from the password file and Mosquitto refuses it', async () => {
    const r = await procs.run('sync-server', ['device', 'revoke', deviceId, '--server', httpUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(base, 'passwd'), 'utf8')).not.toContain(`${deviceId}:`);
    const { run: c, report: rep } = await checkNoHardware(procs, join(base, 'dev'), 5);
    expect(c.code).toBe(1);
    expect(rep.items.find((i) => i.id === 'broker')).toMatchObject({ ok: false, code: 'provision.broker-refused' });
    expect(rep.items.find((i) => i.id === 'server')).toMatchObject({ ok: false, code: 'provision.device-revoked' });
  }, 60_000);
});
