import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { bcryptHash, bcryptVerify } from '../../sync-server/bcrypt.js';
import { aclFileText } from '../../sync-server/mosquitto-auth.js';
import { applyNatsFiles, mqttFilterToSubjects, natsPermissions, parseNatsFiles } from '../../sync-server/nats-auth.js';
import { expectRcError } from '../support/errors.js';
import { waitFor } from '../support/wait.js';
import { startServer } from '../../sync-server/server.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { testLogger } from '../support/sync-harness.js';

describe('bcrypt for the NATS users file', () => {
  it('verifies the OpenBSD test vectors (the $2a$ hashes NATS configs may already hold)', () => {
    expect(bcryptVerify('U*U', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW')).toBe(true);
    expect(bcryptVerify('', '$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.')).toBe(true);
    expect(bcryptVerify('U*V', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW')).toBe(false);
    expect(bcryptVerify('U*U', 'not a hash')).toBe(false);
  });

  it('a fresh hash is $2b$10$ with a random salt and verifies only its own password', () => {
    const a = bcryptHash('device-password');
    const b = bcryptHash('device-password');
    expect(a).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(a).not.toBe(b);
    expect(bcryptVerify('device-password', a)).toBe(true);
    expect(bcryptVerify('device-passwore', a)).toBe(false);
  });
});

describe('NATS users from the one ACL source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rc-nats-auth-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a topic level with a dot (a device id like bus.7) is refused with provision.nats-subject: NATS would read two levels', () => {
    const e = expectRcError(() => mqttFilterToSubjects('rc/v1/device/bus.7/journal'), ErrorCode.ProvisionNatsSubject);
    expect(e.context).toMatchObject({ level: 'bus.7' });
    expectRcError(() => natsPermissions(aclFileText('rc-sync-server', [{ id: 'bus.7', mosqHash: '', scopes: ['transit'] }])), ErrorCode.ProvisionNatsSubject);
  });

  it('writes the file atomically (0640, no temp file left) with hashes and permissions, and runs the reload command', async () => {
    const authFile = join(dir, 'auth.conf');
    const files = parseNatsFiles({ authFile, reloadCommand: `cp "$RC_NATS_AUTH_FILE" "${join(dir, 'copied.conf')}"` });
    const hash = bcryptHash('pw', 4);
    applyNatsFiles(files, [{ user: 'bus-1', password: hash }], aclFileText('rc-sync-server', [{ id: 'bus-1', mosqHash: '', scopes: ['transit'] }]));
    const text = readFileSync(authFile, 'utf8');
    expect(text).toContain(`{ user: "bus-1", password: "${hash}", permissions: { publish: { allow: ["rc.v1.device.bus-1.journal"`);
    expect(text).toContain('"rc.v1.lists.transit.>"');
    expect(statSync(authFile).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    await waitFor(() => existsSync(join(dir, 'copied.conf')) && readFileSync(join(dir, 'copied.conf'), 'utf8') === text, {
      timeoutMs: 10_000,
      what: 'the reload command ran with RC_NATS_AUTH_FILE',
    });
  });

  it('the options are checked: a pid file list and an unknown option', () => {
    expect(parseNatsFiles({ authFile: '/x' }).pidFiles).toEqual([]);
    expectRcError(() => parseNatsFiles({ authFile: '' }), ErrorCode.ConfigInvalid);
    expectRcError(() => parseNatsFiles({ authFile: '/x', pidFile: '/y' }), ErrorCode.ConfigInvalid);
  });

  it('a write into a missing directory is provision.broker-files', () => {
    expectRcError(() => applyNatsFiles(parseNatsFiles({ authFile: join(dir, 'no', 'auth.conf') }), [], ''), ErrorCode.ProvisionBrokerFiles);
  });
});

describe("the broker URL devices get names a cluster's nodes comma-separated", () => {
  it('every node must be a broker URL with a host (checked before anything starts)', async () => {
    const base = { dataDir: '/nonexistent-rc-dir', httpPort: 0, tokenKey: DEV_TOKEN_KEY, log: testLogger() };
    const e = await expectRcError(startServer({ ...base, publicBrokerUrl: 'mqtt://10.0.0.1:1883,mqtt://:1883' }), ErrorCode.ServerBadRequest);
    expect(e.message).toContain('--public-broker-url');
    const ca = await expectRcError(
      startServer({ ...base, brokerUrl: 'mqtt://127.0.0.1:1', brokerCa: 'PEM', publicBrokerUrl: 'mqtts://10.0.0.1:8883,mqtt://10.0.0.2:1883' }),
      ErrorCode.ServerBadRequest,
    );
    expect(ca.message).toContain('mqtts://');
  });
});
