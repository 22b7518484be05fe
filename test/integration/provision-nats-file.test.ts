import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../device/config/index.js';
import { initDevice, rotateDevice } from '../../provisioning/ops.js';
import { bcryptVerify } from '../../sync-server/bcrypt.js';
import { operatorFetch } from '../support/operator-api.js';
import { startProvStack, type ProvStack } from '../support/provision-rig.js';

/** The NATS users file follows enrolment, rotation and revocation (the cluster itself: test/integration/cluster-nats-users.test.ts). */
describe('the server keeps the NATS users file through a device’s life', () => {
  let stack: ProvStack;
  const base = mkdtempSync(join(tmpdir(), 'rc-prov-nats-'));
  const authFile = join(base, 'auth.conf');
  const dir = join(base, 'dev');
  let deviceId = '';
  const hashOf = (id: string) => new RegExp(`\\{ user: "${id}", password: "(\\$2b\\$10\\$[./A-Za-z0-9]{53})"`).exec(readFileSync(authFile, 'utf8'))?.[1];
  const password = () => loadConfigFile(join(dir, 'device.json')).sync!.password!;

  beforeAll(async () => {
    stack = await startProvStack('embedded', { nats: { authFile, pidFiles: [] } });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('written on start with the server’s users, then the enrolled device with a bcrypt hash of its password', async () => {
    expect(readFileSync(authFile, 'utf8')).toContain('{ user: "rc-sync-server-publisher", password: "$2b$10$');
    const r = await initDevice({ server: stack.server.httpUrl, token: stack.token('bus', { route: '7' }).token, kind: 'bus', route: '7', vehicle: 'A1', dir });
    deviceId = r.deviceId;
    const h = hashOf(deviceId);
    expect(h).toBeDefined();
    expect(bcryptVerify(password(), h!)).toBe(true);
    expect(readFileSync(authFile, 'utf8')).not.toContain(password());
  });

  it('rotation replaces the hash: the new password matches, the old one no longer', async () => {
    const old = password();
    await rotateDevice(dir);
    const h = hashOf(deviceId)!;
    expect(password()).not.toBe(old);
    expect(bcryptVerify(password(), h)).toBe(true);
    expect(bcryptVerify(old, h)).toBe(false);
  });

  it('revocation removes the device', async () => {
    const res = await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, `/v1/devices/${deviceId}/revoke`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(readFileSync(authFile, 'utf8')).not.toContain(`"${deviceId}"`);
    expect(readFileSync(authFile, 'utf8')).toContain('rc-sync-server-ingest');
  });
});
