import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveTokenDeriver } from '../../device/emv/token-key.js';
import { readMirCard } from '../../device/emv/read.js';
import { withLuhnDigit } from '../../protocol/pan.js';
import { DEV_TOKEN_KEY, deriveToken } from '../../protocol/token.js';
import { tokeniseHolderCard } from '../../sync-server/console/cards.js';
import { Pkcs11Token, newTokenKey } from '../../protocol/token-hsm.js';
import { expectRcError } from '../support/errors.js';
import { pcscdCardRig } from '../support/rig/pcscd-card-rig.js';
import { softhsmAvailable, startSoftHsm, type SoftHsmRig } from '../support/rig/softhsm.js';

const quiet = { warn: () => {}, info: () => {} };
const PAN = withLuhnDigit('220070123456789');

describe.skipIf(!softhsmAvailable())('the device derives card tokens inside its PKCS#11 token', () => {
  let hsm: SoftHsmRig;
  let dir: string;
  let pinFile: string;
  const key = newTokenKey(2);
  const rig = pcscdCardRig({});

  beforeAll(async () => {
    hsm = startSoftHsm();
    const t = Pkcs11Token.open(hsm);
    t.importKey(key);
    dir = mkdtempSync(join(tmpdir(), 'rc-hsm-dev-'));
    pinFile = join(dir, 'pin');
    writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
    await rig.setup();
  });
  afterAll(async () => {
    await rig.teardown();
    hsm?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pkcs11 = () => ({ library: hsm.library, tokenLabel: hsm.tokenLabel, pinFile });

  it('a tap through pcscd gives the token of the key in the token, with its version', async () => {
    const d = resolveTokenDeriver({ version: 2, pkcs11: pkcs11() }, quiet, {});
    expect(d.source).toBe('pkcs11');
    const ch = await rig.present({ kind: 'emv', pan: PAN, expiry: '2031-07', psn: '01', gpoFormat: 1 });
    try {
      const r = await readMirCard(ch, { now: new Date(), tokenKey: d });
      expect(r.token).toBe(deriveToken(Buffer.from(PAN, 'ascii'), { expiry: '2031-07' }, key));
      expect(r.keyVersion).toBe(2);
      // the holder who types the number and the printed 07/31 in the cabinet gets this very token
      expect(tokeniseHolderCard(PAN, '07/31', key)).toMatchObject({ token: r.token, keyVersion: 2, expiry: '2031-07' });
    } finally {
      await rig.remove();
    }
  });

  it('a token holding an older version too: a tap through pcscd gives the token of each version, newest first (one HMAC each, inside the token), each under its own scheme', async () => {
    // v1 is a key from before the PAN ‖ expiry migration: its tokens stay PAN ‖ PSN
    const key1 = { ...newTokenKey(1), scheme: 'pan-psn' as const };
    const t = Pkcs11Token.open(hsm);
    try {
      t.importKey(key1);
    } finally {
      t.close();
    }
    const d = resolveTokenDeriver({ version: 2, pkcs11: pkcs11() }, quiet, {});
    const ch = await rig.present({ kind: 'emv', pan: PAN, expiry: '2031-07', psn: '01', gpoFormat: 1 });
    try {
      const r = await readMirCard(ch, { now: new Date(), tokenKey: d });
      const pan = Buffer.from(PAN, 'ascii');
      expect([r.token, r.keyVersion]).toEqual([deriveToken(pan, { expiry: '2031-07' }, key), 2]);
      expect(r.tokens).toEqual([
        { token: deriveToken(pan, { expiry: '2031-07' }, key), keyVersion: 2 },
        { token: deriveToken(pan, { expiry: null, psn: '01' }, key1), keyVersion: 1 },
      ]);
      // a device configured on v1 does not use the newer v2 its token may already hold
      const only1 = resolveTokenDeriver({ version: 1, pkcs11: pkcs11() }, quiet, {});
      expect([only1.version, only1.older ?? []]).toEqual([1, []]);
      only1.close();
    } finally {
      await rig.remove();
      d.close();
    }
  });

  it('the PIN comes from a 0600 file or RC_PKCS11_PIN; a file others can read is refused', () => {
    expect(resolveTokenDeriver({ version: 2, pkcs11: { library: hsm.library, tokenLabel: hsm.tokenLabel } }, quiet, { RC_PKCS11_PIN: hsm.pin }).version).toBe(
      2,
    );
    chmodSync(pinFile, 0o644);
    try {
      expectRcError(() => resolveTokenDeriver({ version: 2, pkcs11: pkcs11() }, quiet, {}), 'token.hsm-unavailable');
    } finally {
      chmodSync(pinFile, 0o600);
    }
    expectRcError(() => resolveTokenDeriver({ version: 2, pkcs11: { library: hsm.library, tokenLabel: hsm.tokenLabel } }, quiet, {}), 'token.hsm-unavailable');
    expectRcError(() => resolveTokenDeriver({ version: 7, pkcs11: pkcs11() }, quiet, {}), 'token.hsm-key-missing');
  });

  it('the public development key is refused unless explicitly allowed (demo, tests)', () => {
    expectRcError(() => resolveTokenDeriver(undefined, quiet, {}), 'token.dev-key-refused');
    expectRcError(() => resolveTokenDeriver({ version: 0, hex: DEV_TOKEN_KEY.key.toString('hex') }, quiet, {}), 'token.dev-key-refused');
    expectRcError(() => resolveTokenDeriver(undefined, quiet, { RC_TOKEN_KEY: DEV_TOKEN_KEY.key.toString('hex') }), 'token.dev-key-refused');
    expect(resolveTokenDeriver(undefined, quiet, {}, { allowDev: true }).source).toBe('dev');
    expect(resolveTokenDeriver({ version: 1, hex: key.key.toString('hex') }, quiet, {}).source).toBe('config');
  });
});
