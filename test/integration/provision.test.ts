import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../device/config/index.js';
import { ErrorCode } from '../../protocol/errors.js';
import { expectRcError } from '../support/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { files, loadDevice } from '../../provisioning/device-dir.js';
import { initDevice, resetDevice, rotateDevice, showDevice, whoAmI, type InitOptions } from '../../provisioning/ops.js';
import { connectAs, startProvStack, type ProvStack } from '../support/provision-rig.js';
import { operatorFetch } from '../support/operator-api.js';

describe('provisioning a device against a running sync-server (embedded broker)', () => {
  let stack: ProvStack;
  const dirs: string[] = [];
  const newDir = () => {
    const d = join(mkdtempSync(join(tmpdir(), 'rc-prov-dev-')), 'rc-device');
    dirs.push(d);
    return d;
  };
  const busInit = (token: string, dir: string, extra: Partial<InitOptions> = {}): InitOptions => ({
    server: stack.server.httpUrl,
    token,
    kind: 'bus',
    route: '7',
    vehicle: 'A123',
    dir,
    ...extra,
  });

  beforeAll(async () => {
    stack = await startProvStack('embedded');
  });
  afterAll(async () => {
    await stack?.close();
    for (const d of dirs) rmSync(join(d, '..'), { recursive: true, force: true });
  });

  it('init writes a config the runtime loads, keys 0600, and the secrets are opened on the device', async () => {
    const dir = newDir();
    const r = await initDevice(busInit(stack.token('bus', { route: '7' }).token, dir));
    expect(r.deviceId).toMatch(/^bus-[0-9a-f]{10}$/);
    const cfg = loadConfigFile(join(dir, 'device.json'));
    expect(cfg.device).toMatchObject({ id: r.deviceId, kind: 'bus', route: '7', vehicle: 'A123' });
    expect(cfg.sync).toMatchObject({
      brokerUrl: stack.brokerUrl,
      deviceId: r.deviceId,
      username: r.deviceId,
      scopes: ['transit', 'stoplist'],
      serverPublicKey: stack.server.publicKeyPem,
    });
    expect(cfg.tokenKey).toEqual({ version: DEV_TOKEN_KEY.version, scheme: 'pan-expiry', hex: DEV_TOKEN_KEY.key.toString('hex') });
    expect(cfg.tariff?.routes['7']).toEqual({ fullFareKopecks: 3500 });
    for (const f of ['device.json', 'identity.pem', 'box.pem', 'provision.json']) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    // the server keeps only hashes: neither the token nor the password in clear
    const raw =
      JSON.stringify(stack.server.db.prepare('SELECT * FROM device_identities').all()) +
      JSON.stringify(stack.server.db.prepare('SELECT * FROM enrol_tokens').all());
    expect(raw).not.toContain(cfg.sync!.password!);
    expect(raw).toMatch(/scrypt\$16384\$8\$1\$/);
    // the broker takes the credentials
    const c = await connectAs(stack.brokerUrl, r.deviceId, cfg.sync!.username, cfg.sync!.password);
    await c.endAsync();
  });

  it('the enrol answer carries the secrets sealed, never the password or token key in clear', async () => {
    const t = stack.token('canteen', { school: '7' });
    const { generateDeviceKeys, rawPublic } = await import('../../protocol/sealing.js');
    const k = generateDeviceKeys();
    const res = await fetch(`${stack.server.httpUrl}/v1/enrol`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: t.token, kind: 'canteen', school: '7', identityKey: rawPublic(k.identity), boxKey: rawPublic(k.box) }),
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain(DEV_TOKEN_KEY.key.toString('hex'));
    expect(JSON.parse(text)).toMatchObject({ sealed: { alg: 'x25519-hkdf-sha256-aes256gcm' }, scopes: ['school:7', 'stoplist'] });
  });

  it('a reused token fails with provision.token-used and writes nothing', async () => {
    const t = stack.token('bus', { route: '7' }).token;
    await initDevice(busInit(t, newDir()));
    const dir = newDir();
    await expectRcError(initDevice(busInit(t, dir)), ErrorCode.ProvisionTokenUsed);
    expect(existsSync(dir)).toBe(false);
  });

  it('an expired token fails with provision.token-expired', async () => {
    const t = stack.token('bus');
    stack.server.db.prepare('UPDATE enrol_tokens SET expires_ms = ? WHERE id = ?').run(Date.now() - 1000, t.id);
    await expectRcError(initDevice(busInit(t.token, newDir())), ErrorCode.ProvisionTokenExpired);
  });

  it('a token for another kind, school or route fails with provision.token-wrong-kind and stays usable', async () => {
    const t = stack.token('turnstile', { school: '7' });
    await expectRcError(initDevice(busInit(t.token, newDir())), ErrorCode.ProvisionTokenWrongKind);
    await expectRcError(
      initDevice({ server: stack.server.httpUrl, token: t.token, kind: 'turnstile', school: '8', direction: 'entry', dir: newDir() }),
      ErrorCode.ProvisionTokenWrongKind,
    );
    const r = stack.token('bus', { route: '12' });
    await expectRcError(initDevice(busInit(r.token, newDir())), ErrorCode.ProvisionTokenWrongKind);
    const ok = await initDevice({ server: stack.server.httpUrl, token: t.token, kind: 'turnstile', school: '7', direction: 'entry', dir: newDir() });
    expect(ok.scopes).toEqual(['school:7', 'stoplist']);
  });

  it('an unknown token is provision.token-invalid; an unreachable server is provision.server-unreachable; nothing written', async () => {
    const dir = newDir();
    await expectRcError(initDevice(busInit('rce_' + 'A'.repeat(32), dir)), ErrorCode.ProvisionTokenInvalid);
    await expectRcError(initDevice(busInit(stack.token('bus').token, dir, { server: 'http://127.0.0.1:1' })), ErrorCode.ProvisionServerUnreachable);
    expect(existsSync(dir)).toBe(false);
  });

  it('a route the tariff does not know is provision.no-rules before the token is spent', async () => {
    const t = stack.token('bus');
    await expectRcError(initDevice(busInit(t.token, newDir(), { route: '999' })), ErrorCode.ProvisionNoRules);
    const r = await initDevice(busInit(t.token, newDir()));
    expect(r.deviceId).toMatch(/^bus-/);
  });

  it('init refuses a directory that already holds a device, and leaves it alone', async () => {
    const dir = newDir();
    await initDevice(busInit(stack.token('bus').token, dir));
    const before = readFileSync(join(dir, 'device.json'), 'utf8');
    await expectRcError(initDevice(busInit(stack.token('bus').token, dir)), ErrorCode.ProvisionAlreadyDone);
    expect(readFileSync(join(dir, 'device.json'), 'utf8')).toBe(before);
  });

  it('a bad time zone is refused before the token is spent and before anything is written', async () => {
    const dir = newDir();
    const t = stack.token('bus');
    await expectRcError(initDevice(busInit(t.token, dir, { timeZone: 'Mars/Olympus' })), ErrorCode.InputInvalid);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    expect((await initDevice(busInit(t.token, dir))).deviceId).toMatch(/^bus-/);
  });

  it('a hand-edited device.json with a wrong field gives config.invalid naming the field', async () => {
    const dir = newDir();
    await initDevice(busInit(stack.token('bus').token, dir));
    const f = files(dir).config;
    const cfg = JSON.parse(readFileSync(f, 'utf8')) as { device: { kind: string } };
    cfg.device.kind = 'tram';
    writeFileSync(f, JSON.stringify(cfg, null, 2));
    const err = expectRcError(() => showDevice(dir), ErrorCode.ConfigInvalid);
    expect(err.message).toContain('device.kind');
  });

  it('rotate gives new credentials: the old password stops working, the new one works', async () => {
    const dir = newDir();
    const r = await initDevice(busInit(stack.token('bus').token, dir));
    const old = loadDevice(dir).config.sync!.password!;
    await rotateDevice(dir);
    const now = loadDevice(dir).config.sync!.password!;
    expect(now).not.toBe(old);
    await expect(connectAs(stack.brokerUrl, r.deviceId, r.deviceId, old)).rejects.toThrow(/Not authorized/i);
    const c = await connectAs(stack.brokerUrl, r.deviceId, r.deviceId, now);
    await c.endAsync();
    expect(showDevice(dir).rotatedAt).not.toBeNull();
  });

  it('a revoked device is refused by the broker, disconnected at once, and told provision.device-revoked', async () => {
    const dir = newDir();
    const r = await initDevice(busInit(stack.token('bus').token, dir));
    const cfg = loadDevice(dir).config;
    const c = await connectAs(stack.brokerUrl, r.deviceId, r.deviceId, cfg.sync!.password!);
    const closed = new Promise<number>((res) => c.once('close', () => res(Date.now())));
    const t0 = Date.now();
    const res = await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, `/v1/devices/${r.deviceId}/revoke`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect((await closed) - t0).toBeLessThan(1000);
    c.end(true);
    await expect(connectAs(stack.brokerUrl, r.deviceId, r.deviceId, cfg.sync!.password!)).rejects.toThrow(/Not authorized/i);
    await expectRcError(rotateDevice(dir), ErrorCode.ProvisionDeviceRevoked);
    await expectRcError(whoAmI(loadDevice(dir)), ErrorCode.ProvisionDeviceRevoked);
    const list = (await (await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, '/v1/devices')).json()) as {
      devices: { id: string; revokedAt: string | null }[];
    };
    expect(list.devices.find((d) => d.id === r.deviceId)?.revokedAt).toBeTruthy();
  });

  it('show prints who the device is without its secrets; reset wipes keys, database and config', async () => {
    const dir = newDir();
    const r = await initDevice(busInit(stack.token('bus').token, dir));
    const cfg = loadDevice(dir).config;
    writeFileSync(files(dir).store, 'db');
    const s = showDevice(dir);
    expect(s).toMatchObject({ deviceId: r.deviceId, kind: 'bus', route: '7', vehicle: 'A123', scopes: ['transit', 'stoplist'] });
    const text = JSON.stringify(s);
    expect(text).not.toContain(cfg.sync!.password!);
    expect(text).not.toContain(cfg.tokenKey!.hex!);
    const removed = resetDevice(dir);
    expect(removed.length).toBeGreaterThanOrEqual(5);
    expect(readdirSync(dir)).toEqual([]);
    expectRcError(() => showDevice(dir), ErrorCode.ProvisionNotDone);
  });

  it('malformed enrol and token requests are server.bad-request and change nothing', async () => {
    const post = async (path: string, body: unknown) => {
      const r = await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: r.status, code: ((await r.json()) as { error?: { code: string } }).error?.code };
    };
    const before = stack.server.db.prepare('SELECT count(*) FROM device_identities').pluck().get();
    expect(await post('/v1/enrol', 'not json')).toEqual({ status: 400, code: ErrorCode.ServerBadRequest });
    expect(await post('/v1/enrol', { token: stack.token('bus').token, kind: 'bus', route: '7', identityKey: 'short', boxKey: 'short' })).toEqual({
      status: 400,
      code: ErrorCode.ServerBadRequest,
    });
    expect(await post('/v1/enrol-tokens', { kind: 'bus', school: '7', ttlSec: 3600 })).toEqual({ status: 400, code: ErrorCode.ServerBadRequest });
    expect(await post('/v1/enrol-tokens', { kind: 'bus', ttlSec: 1 })).toEqual({ status: 400, code: ErrorCode.ServerBadRequest });
    expect(await post('/v1/devices/nobody-1/revoke', {})).toEqual({ status: 404, code: ErrorCode.ServerNotFound });
    expect(stack.server.db.prepare('SELECT count(*) FROM device_identities').pluck().get()).toBe(before);
  });

  it('a signed request replayed, or signed by another key, is provision.bad-proof', async () => {
    const dir = newDir();
    const r = await initDevice(busInit(stack.token('bus').token, dir));
    const { requestProof, generateDeviceKeys } = await import('../../protocol/sealing.js');
    const proof = requestProof('whoami', r.deviceId, loadDevice(dir).keys.identity);
    const post = (p: unknown) =>
      fetch(`${stack.server.httpUrl}/v1/devices/${r.deviceId}/whoami`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(p),
      }).then(async (x) => ({
        status: x.status,
        body: (await x.json()) as { error?: { code: string } },
      }));
    expect((await post(proof)).status).toBe(200);
    expect((await post(proof)).body.error?.code).toBe(ErrorCode.ProvisionBadProof);
    expect((await post(requestProof('whoami', r.deviceId, generateDeviceKeys().identity))).body.error?.code).toBe(ErrorCode.ProvisionBadProof);
  });
});
