import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../device/config/index.js';
import { resolveTokenDeriver } from '../../device/emv/token-key.js';
import { withLuhnDigit } from '../../protocol/pan.js';
import { deriveToken } from '../../protocol/token.js';
import { ROTATION_PAN, rotationFixture, rotationToken } from '../support/key-rotation.js';
import { Pkcs11Token, newTokenKey, type HsmTokenKey } from '../../protocol/token-hsm.js';
import { initDevice, rotateDevice, type InitOptions } from '../../provisioning/ops.js';
import { expectRcError } from '../support/errors.js';
import { startProvStack, type ProvStack } from '../support/provision-rig.js';
import { softhsmAvailable, startSoftHsm, type SoftHsmRig } from '../support/rig/softhsm.js';
import { linesOf } from '../support/sync-harness.js';
import { makeRig, mirSpec, turnstileConfig } from '../unit/runtime-helpers.js';

/**
 * Enrolment with the card-token key in hardware: the server keeps its key in its
 * token (wrappable only), the device sends its token's RSA key, the key travels
 * wrapped (inside the sealed secrets) and is unwrapped inside the device's token.
 * A stolen device directory then holds no key at all.
 */
const quiet = { warn: () => {}, info: () => {} };
const PAN = withLuhnDigit('220070555555555');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe.skipIf(!softhsmAvailable())('the card-token key reaches a provisioned device only inside its token', () => {
  let hsm: SoftHsmRig;
  let serverHsm: Pkcs11Token;
  let stack: ProvStack;
  let serverKey: HsmTokenKey;
  const key = newTokenKey(1);
  const key2 = newTokenKey(2);
  const work = mkdtempSync(join(tmpdir(), 'rc-hsm-prov-'));
  const pinFile = join(work, 'device.pin');
  const devDir = join(work, 'rc-device');
  const pkcs11 = () => ({ library: hsm.library, tokenLabel: 'rc-device', pinFile });
  const busInit = (token: string, extra: Partial<InitOptions> = {}): InitOptions => ({
    server: stack.server.httpUrl,
    token,
    kind: 'bus',
    route: '7',
    dir: devDir,
    ...extra,
  });

  beforeAll(async () => {
    hsm = startSoftHsm('rc-server');
    // the device's token: a second token in the same SoftHSM store (SoftHSM reads its config once per process)
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'rc-device', '--pin', '4321', '--so-pin', '4321-so'], {
      env: { ...process.env, SOFTHSM2_CONF: hsm.confPath },
      stdio: 'pipe',
    });
    writeFileSync(pinFile, '4321\n', { mode: 0o600 });
    serverHsm = Pkcs11Token.open(hsm);
    serverHsm.importKey({ version: 1, key: Buffer.from(key.key) }, { wrappable: true }); // rc-sync-server key import
    serverKey = { version: 1, hsm: serverHsm };
    stack = await startProvStack('embedded', { tokenKey: serverKey });
  });
  afterAll(async () => {
    await stack?.close();
    serverHsm?.close();
    hsm?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('the server tokenises imports inside its token', async () => {
    await stack.server.api.importCsv('cards', linesOf(`person_id,pan,psn,expiry\np1,${PAN},01,2031-07\n`), false);
    const row = stack.server.db.prepare('SELECT token, key_version FROM cards WHERE person_id = ?').get('p1') as { token: string; key_version: number };
    expect(row).toEqual({ token: deriveToken(Buffer.from(PAN, 'ascii'), { expiry: '2031-07' }, key), key_version: 1 });
  });

  it('a device without a token is refused by a server whose key is in its token, and the enrolment token is not spent', async () => {
    const t = stack.token('bus', { route: '7' }).token;
    await expectRcError(initDevice(busInit(t)), 'token.device-token-required');
    // the same token still enrols the device with its token
    const r = await initDevice(busInit(t, { pkcs11: pkcs11() }));
    expect(r.deviceId).toMatch(/^bus-/);
  });

  it('device.json names the token only; the device derives the same tokens as the server inside it', () => {
    const cfg = loadConfigFile(join(devDir, 'device.json'));
    expect(cfg.tokenKey).toEqual({ version: 1, pkcs11: { library: hsm.library, tokenLabel: 'rc-device', pinFile } });
    const d = resolveTokenDeriver(cfg.tokenKey, quiet, {});
    expect(d.source).toBe('pkcs11');
    expect(d.derive(Buffer.from(PAN, 'ascii'), { expiry: '2031-07' })).toBe(deriveToken(Buffer.from(PAN, 'ascii'), { expiry: '2031-07' }, key));
  });

  it("a copy of the provisioned device's whole directory holds no key, in any form", () => {
    const copy = join(work, 'stolen');
    cpSync(devDir, copy, { recursive: true });
    expect(relative(devDir, hsm.tokenDir).startsWith('..')).toBe(true); // the token store (the secure element) is not in it
    const files = filesUnder(copy);
    expect(files.map((f) => relative(copy, f)).sort()).toEqual(expect.arrayContaining(['device.json', 'identity.pem', 'box.pem', 'provision.json']));
    const forms = [key.key, Buffer.from(key.key.toString('hex')), Buffer.from(key.key.toString('hex').toUpperCase()), Buffer.from(key.key.toString('base64'))];
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const form of forms) expect(bytes.includes(form), `${relative(copy, f)} holds the key`).toBe(false);
    }
    expect(readFileSync(join(copy, 'device.json'), 'utf8')).not.toMatch(/"hex"/);
  });

  it('rotation: a new key version reaches the device wrapped at rc-provision rotate; the token keeps v1 beside v2', async () => {
    serverHsm.importKey({ version: 2, key: Buffer.from(key2.key) }, { wrappable: true }); // rc-sync-server key rotate / import of v2
    serverKey.version = 2; // what a restart of the server on the newest version does
    await rotateDevice(devDir);
    const cfg = loadConfigFile(join(devDir, 'device.json'));
    expect(cfg.tokenKey).toEqual({ version: 2, pkcs11: expect.objectContaining({ tokenLabel: 'rc-device' }) });
    const device = Pkcs11Token.open({ library: hsm.library, tokenLabel: 'rc-device', pin: '4321' });
    try {
      expect(device.keyVersions()).toEqual([1, 2]);
      const pan = Buffer.from(PAN, 'ascii');
      expect(device.deriver(2).derive(pan, { expiry: '2031-07' })).toBe(deriveToken(pan, { expiry: '2031-07' }, key2));
      expect(device.deriver(1).derive(pan, { expiry: '2031-07' })).toBe(deriveToken(pan, { expiry: '2031-07' }, key));
    } finally {
      device.close();
    }
  });

  it('after the rotation the device recognises, through its tap pipeline, cards listed under v1 tokens and under v2 tokens; a card under neither is refused', async () => {
    // what rc-device run loads from the rotated device.json: v2 first, v1 (still in the token) beside it
    const d = resolveTokenDeriver(loadConfigFile(join(devDir, 'device.json')).tokenKey, quiet, {});
    expect([d.source, d.version, d.older?.map((o) => o.version)]).toEqual(['pkcs11', 2, [1]]);
    const rig = await makeRig(turnstileConfig(), ['Entry', 'Exit'], { tokenKey: d });
    try {
      const { old: OLD, new: NEW, none: NONE } = ROTATION_PAN;
      const t = rotationToken;
      // mid-migration: OLD not yet re-imported (its v1 token), NEW already under v2
      rig.store.applySnapshot(rotationFixture(key, key2).school);
      const a = await rig.tap('Entry', mirSpec(OLD));
      expect(a).toMatchObject({ result: 'allow', gate: 'open-entry' });
      await rig.outcome(a.seq);
      const b = await rig.tap('Entry', mirSpec(NEW));
      expect(b).toMatchObject({ result: 'allow', gate: 'open-entry' });
      await rig.outcome(b.seq);
      expect(await rig.tap('Entry', mirSpec(NONE))).toMatchObject({ result: 'deny', reason: 'not-enrolled', gate: null });
      const taps = rig.store.journalRange(1, 10).filter((e) => e.result !== 'event');
      expect(taps.map((e) => [e.result, e.token, e.keyVersion])).toEqual([
        ['allow', t(OLD, key), 1],
        ['allow', t(NEW, key2), 2],
        ['deny', t(NONE, key2), 2],
      ]);
    } finally {
      await rig.close();
      d.close();
    }
  });
});
