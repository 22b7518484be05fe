import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteRegistry } from '../../sync-server/registry.js';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { expectRcError } from '../support/errors.js';
import { generateDeviceKeys, open, rawPublic, requestProof, seal, verifyProof } from '../../protocol/sealing.js';
import { writeAllOrNothing } from '../../provisioning/device-dir.js';
import { devicePolicy } from '../../sync-server/broker-auth.js';
import { DeviceRegistry, hashPassword, verifyPassword } from '../../sync-server/devices.js';
import { aclFileText, mosquittoHash, passwordFileText, verifyMosquittoHash } from '../../sync-server/mosquitto-auth.js';
import { parseTtl } from '../../sync-server/commands/enrol-token.js';

const tmp = mkdtempSync(join(tmpdir(), 'rc-prov-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('sealed secrets (X25519 + HKDF + AES-256-GCM)', () => {
  it('open() with the device key gives back what the server sealed', () => {
    const k = generateDeviceKeys();
    const s = seal({ password: 'p'.repeat(20), n: 1 }, rawPublic(k.box));
    expect(open(s, k.box)).toEqual({ password: 'p'.repeat(20), n: 1 });
    expect(JSON.stringify(s)).not.toContain('pppp');
  });

  it('another device key, or a flipped byte, is provision.seal-invalid', () => {
    const k = generateDeviceKeys();
    const s = seal({ secret: 'x' }, rawPublic(k.box));
    expectRcError(() => open(s, generateDeviceKeys().box), ErrorCode.ProvisionSealInvalid);
    const ct = Buffer.from(s.ct, 'base64');
    ct[0] = ct[0]! ^ 1;
    expectRcError(() => open({ ...s, ct: ct.toString('base64') }, k.box), ErrorCode.ProvisionSealInvalid);
  });

  it('a request proof verifies only for its purpose, device and key', () => {
    const k = generateDeviceKeys();
    const p = requestProof('rotate', 'bus-1', k.identity);
    expect(verifyProof('rotate', 'bus-1', rawPublic(k.identity), p)).toBe(true);
    expect(verifyProof('whoami', 'bus-1', rawPublic(k.identity), p)).toBe(false);
    expect(verifyProof('rotate', 'bus-2', rawPublic(k.identity), p)).toBe(false);
    expect(verifyProof('rotate', 'bus-1', rawPublic(generateDeviceKeys().identity), p)).toBe(false);
  });
});

describe('password hashes', () => {
  it('scrypt hash verifies the password and nothing else', async () => {
    const h = await hashPassword('correct horse battery');
    expect(h).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('correct horse battery', h)).toBe(true);
    expect(await verifyPassword('correct horse batterz', h)).toBe(false);
  });

  it("Mosquitto $7$ hashes are byte-identical to mosquitto_passwd's (known vector)", () => {
    // mosquitto_passwd -b file alice secret123 (mosquitto 2.0.11)
    const fromTool = '$7$101$ebKQrInfwh4uVEJj$vMYmH6PECth7YNaIHSlSSM8HlT1RX5FP5k8CEQt81uHy+gE50TfQ0W3LtOMC1PFVqE06u4dKnmeNJTwMb0VPWg==';
    expect(mosquittoHash('secret123', Buffer.from('ebKQrInfwh4uVEJj', 'base64'))).toBe(fromTool);
    expect(verifyMosquittoHash('secret123', fromTool)).toBe(true);
    expect(verifyMosquittoHash('secret124', fromTool)).toBe(false);
  });

  it('the password file has the server and each device; the ACL gives each device only its topics and scopes', () => {
    const devs = [{ id: 'turnstile-aa', mosqHash: '$7$101$a$b', scopes: ['school:7', 'stoplist'] }];
    expect(passwordFileText({ user: 'rc-sync-server', mosqHash: '$7$101$s$h' }, devs)).toBe('rc-sync-server:$7$101$s$h\nturnstile-aa:$7$101$a$b\n');
    const acl = aclFileText('rc-sync-server', devs);
    expect(acl).toContain('user turnstile-aa\ntopic write rc/v1/device/turnstile-aa/journal\n');
    expect(acl).toContain('topic read rc/v1/lists/school:7/#');
    expect(acl).not.toContain('school:8');
    expect(acl).not.toMatch(/user turnstile-aa[\s\S]*topic (read|readwrite) rc\/v1\/#/);
  });
});

describe('enrolment tokens and the embedded broker policy', () => {
  const db = openSqliteRegistry(join(tmp, 'reg.sqlite'));
  const reg = new DeviceRegistry(db);
  const keys = () => {
    const k = generateDeviceKeys();
    return { identityKey: rawPublic(k.identity), boxKey: rawPublic(k.box) };
  };

  it('stores only a hash of the token, and a token is spent once', () => {
    const t = reg.createToken({ kind: 'bus', route: '7', ttlSec: 3600 });
    expect(JSON.stringify(db.prepare('SELECT * FROM enrol_tokens').all())).not.toContain(t.token);
    const d = reg.enrol({ token: t.token, kind: 'bus', ...keys() }, { pwHash: 'h', mosqHash: 'm' });
    expect(d).toMatchObject({ kind: 'bus', route: '7', scopes: ['transit', 'stoplist'] });
    expectRcError(() => reg.enrol({ token: t.token, kind: 'bus', ...keys() }, { pwHash: 'h', mosqHash: 'm' }), ErrorCode.ProvisionTokenUsed);
  });

  it('expired and wrong-kind tokens are refused, and a refusal spends nothing', () => {
    const now = Date.now();
    const t = reg.createToken({ kind: 'canteen', school: '5', ttlSec: 60 }, now);
    expectRcError(
      () => reg.enrol({ token: t.token, kind: 'canteen', school: '5', ...keys() }, { pwHash: 'h', mosqHash: 'm' }, now + 61_000),
      ErrorCode.ProvisionTokenExpired,
    );
    expectRcError(
      () => reg.enrol({ token: t.token, kind: 'turnstile', school: '5', ...keys() }, { pwHash: 'h', mosqHash: 'm' }, now),
      ErrorCode.ProvisionTokenWrongKind,
    );
    expect(reg.enrol({ token: t.token, kind: 'canteen', ...keys() }, { pwHash: 'h', mosqHash: 'm' }, now).school).toBe('5');
  });

  it('a device may publish only its own journal/status/request and subscribe only to its scopes', async () => {
    const t = reg.createToken({ kind: 'turnstile', school: '7', ttlSec: 3600 });
    const d = reg.enrol({ token: t.token, kind: 'turnstile', ...keys() }, { pwHash: await hashPassword('device-password-1234'), mosqHash: 'm' });
    const p = devicePolicy(reg, 'srv', 'srv-pass');
    expect(await p.authenticate(d.id, d.id, Buffer.from('wrong-password-123456'))).toBe(false);
    expect(await p.authenticate('other', d.id, Buffer.from('device-password-1234'))).toBe(false); // client id must be the device id
    expect(await p.authenticate('anon', undefined, undefined)).toBe(false);
    expect(await p.authenticate(d.id, d.id, Buffer.from('device-password-1234'))).toBe(true);
    expect(p.canPublish(d.id, `rc/v1/device/${d.id}/journal`)).toBe(true);
    expect(p.canPublish(d.id, 'rc/v1/device/bus-1/journal')).toBe(false);
    expect(p.canPublish(d.id, 'rc/v1/lists/school:7/manifest')).toBe(false);
    expect(p.canSubscribe(d.id, 'rc/v1/lists/school:7/delta/+')).toBe(true);
    expect(p.canSubscribe(d.id, 'rc/v1/lists/stoplist/manifest')).toBe(true);
    expect(p.canSubscribe(d.id, 'rc/v1/lists/school:8/manifest')).toBe(false);
    expect(p.canSubscribe(d.id, 'rc/v1/lists/+/manifest')).toBe(false);
    expect(p.canSubscribe(d.id, 'rc/v1/#')).toBe(false);
    expect(p.canSubscribe(d.id, `rc/v1/device/${d.id}/journal-ack`)).toBe(true);
    expect(p.canSubscribe(d.id, 'rc/v1/device/bus-1/journal-ack')).toBe(false);
    expect(p.canSubscribe(d.id, 'rc/v1/config/+')).toBe(true);
    reg.revoke(d.id);
    p.forget(d.id);
    expect(p.canPublish(d.id, `rc/v1/device/${d.id}/journal`)).toBe(false);
    expect(await p.authenticate(d.id, d.id, Buffer.from('device-password-1234'))).toBe(false);
  });
});

describe('device directory writes', () => {
  it('all files land, or none: a failure half-way leaves nothing behind', () => {
    const dir = join(tmp, 'dev');
    mkdirSync(dir);
    mkdirSync(join(dir, 'device.json')); // renaming a file onto a directory fails
    writeFileSync(join(dir, 'keep.txt'), 'x');
    expectRcError(
      () =>
        writeAllOrNothing(dir, [
          { file: join(dir, 'a.pem'), text: 'a' },
          { file: join(dir, 'device.json'), text: '{}' },
        ]),
      ErrorCode.StoreOpenFailed,
    );
    expect(existsSync(join(dir, 'a.pem'))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['device.json', 'keep.txt']);
  });

  it('--ttl takes 30m, 1h, 2d and refuses anything else', () => {
    expect(parseTtl('30m')).toBe(1800);
    expect(parseTtl('1h')).toBe(3600);
    expect(parseTtl('2d')).toBe(172_800);
    expectRcError(() => parseTtl('1 week'), ErrorCode.ServerBadRequest);
  });
});
