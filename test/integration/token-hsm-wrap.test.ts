import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withLuhnDigit } from '../../protocol/pan.js';
import { deriveToken } from '../../protocol/token.js';
import { Pkcs11Token, newTokenKey } from '../../protocol/token-hsm.js';
import { expectRcError } from '../support/errors.js';
import { softhsmAvailable, startSoftHsm, type SoftHsmRig } from '../support/rig/softhsm.js';

// its own file: SoftHSM2 reads SOFTHSM2_CONF once per process
const pans = (n: number) => Array.from({ length: n }, () => Buffer.from(withLuhnDigit(`220${String(randomInt(0, 1e12)).padStart(12, '0')}`), 'ascii'));
const expectCode = (f: () => unknown, code: 'token.hsm-unavailable' | 'token.hsm-key-missing') => expectRcError(f, code);

describe.skipIf(!softhsmAvailable())('the server wraps its token key for a device inside its own token (C_WrapKey)', () => {
  let rig: SoftHsmRig;
  beforeAll(() => {
    rig = startSoftHsm('rc-wrap-test');
  });
  afterAll(() => rig?.close());

  it('a wrappable server key leaves the token only wrapped; the device token unwraps it and derives the same tokens', () => {
    const t = Pkcs11Token.open(rig);
    const key = newTokenKey(6);
    t.importKey(key, { wrappable: true });
    t.generateKey(7, { wrappable: true });
    expect(t.keyVersions()).toEqual([6, 7]);
    // the same token stands in for the device: its wrapping key pair
    const wrapped = t.wrapKeyFor(6, t.wrappingPublicKey());
    expect(wrapped.includes(key.key)).toBe(false);
    t.unwrapKey(16, wrapped);
    const pan = pans(1)[0]!;
    expect(t.deriver(16).derive(pan, { expiry: '2030-02' })).toBe(deriveToken(pan, { expiry: '2030-02' }, key));
    // a device key (not wrappable) cannot be wrapped out
    expectCode(() => t.wrapKeyFor(16, t.wrappingPublicKey()), 'token.hsm-unavailable');
    expectCode(() => t.wrapKeyFor(9, t.wrappingPublicKey()), 'token.hsm-key-missing');
    // the generated key wraps too, and the unwrapped copy agrees with the original
    t.unwrapKey(17, t.wrapKeyFor(7, t.wrappingPublicKey()));
    expect(t.deriver(17).derive(pan, { expiry: '2030-02' })).toBe(t.deriver(7).derive(pan, { expiry: '2030-02' }));
    t.close();
  });
});
