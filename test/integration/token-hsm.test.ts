import { randomBytes, randomInt } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isRcError } from '../../protocol/errors.js';
import { withLuhnDigit } from '../../protocol/pan.js';
import { deriveToken } from '../../protocol/token.js';
import { Pkcs11Token, newTokenKey, softDeriver, tokenKeyLabel, wrapForToken } from '../../protocol/token-hsm.js';
import { rawSession, softhsmAvailable, startSoftHsm, type SoftHsmRig } from '../support/rig/softhsm.js';

const pans = (n: number) => Array.from({ length: n }, () => Buffer.from(withLuhnDigit(`220${String(randomInt(0, 1e12)).padStart(12, '0')}`), 'ascii'));

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

function expectCode(f: () => unknown, code: string) {
  try {
    f();
  } catch (e) {
    expect(isRcError(e) ? e.code : String(e)).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe.skipIf(!softhsmAvailable())('the card-token key in a PKCS#11 token (SoftHSM2)', () => {
  let rig: SoftHsmRig;
  let token: Pkcs11Token;
  const key = newTokenKey(3);

  beforeAll(() => {
    rig = startSoftHsm();
    // before anyone logs in: PKCS#11 login state is per token and process, so a wrong PIN is only seen first
    expectCode(() => Pkcs11Token.open({ ...rig, pin: '0000' }), ErrorCode.TokenHsmUnavailable);
    token = Pkcs11Token.open(rig);
  });
  afterAll(() => {
    token?.close();
    rig?.close();
  });

  it('an imported key gives exactly the tokens of the in-memory derivation (PAN ‖ expiry; the PSN, or none, changes nothing)', () => {
    token.importKey(key);
    const hsm = token.deriver(3);
    const soft = softDeriver(key);
    expect([hsm.scheme, token.schemeOf(3)]).toEqual(['pan-expiry', 'pan-expiry']);
    for (const pan of pans(200)) {
      const psn = Math.random() < 0.5 ? null : randomInt(0, 256).toString(16).padStart(2, '0');
      const card = { expiry: `20${randomInt(20, 50)}-${String(randomInt(1, 13)).padStart(2, '0')}`, psn };
      expect(hsm.derive(pan, card)).toBe(deriveToken(pan, card, key));
      expect(soft.derive(pan, card)).toBe(hsm.derive(pan, card));
      expect(hsm.derive(pan, { ...card, psn: '7F' })).toBe(hsm.derive(pan, card));
    }
    expectCode(() => hsm.derive(pans(1)[0]!, { expiry: null }), ErrorCode.CardMissingData);
    expectCode(() => hsm.derive(pans(1)[0]!, { expiry: '2030-13' }), ErrorCode.CardBadExpiry);
  });

  it('a key version from before the migration keeps deriving PAN ‖ PSN inside the token: recorded pan-psn, or made without a recorded scheme', async () => {
    const old = { ...newTokenKey(12), scheme: 'pan-psn' as const };
    token.importKey(old);
    expect(token.schemeOf(12)).toBe('pan-psn');
    // a key made by the code before schemes were recorded: no CKA_ID
    const { m, p, s } = await rawSession(rig, true);
    const before = newTokenKey(13);
    p.C_CreateObject(s, [
      { type: m.CKA_CLASS, value: m.CKO_SECRET_KEY },
      { type: m.CKA_KEY_TYPE, value: m.CKK_GENERIC_SECRET },
      { type: m.CKA_LABEL, value: tokenKeyLabel(13) },
      { type: m.CKA_TOKEN, value: true },
      { type: m.CKA_PRIVATE, value: true },
      { type: m.CKA_SENSITIVE, value: true },
      { type: m.CKA_EXTRACTABLE, value: false },
      { type: m.CKA_SIGN, value: true },
      { type: m.CKA_VALUE, value: before.key },
    ]);
    p.C_CloseSession(s);
    expect(token.schemeOf(13)).toBe('pan-psn');
    for (const [v, k] of [
      [12, old],
      [13, { ...before, scheme: 'pan-psn' as const }],
    ] as const) {
      const d = token.deriver(v);
      expect(d.scheme).toBe('pan-psn');
      for (const pan of pans(20)) {
        const card = { expiry: '2030-01', psn: randomInt(0, 256).toString(16).padStart(2, '0') };
        expect(d.derive(pan, card)).toBe(deriveToken(pan, card, k));
        expect(d.derive(pan, card)).toBe(softDeriver(k).derive(pan, card));
      }
    }
  });

  it('the key cannot be read out of the token, and the token files hold no copy of it in clear', async () => {
    const { m, p, s } = await rawSession(rig);
    p.C_FindObjectsInit(s, [{ type: m.CKA_LABEL, value: tokenKeyLabel(3) }]);
    const [h] = p.C_FindObjects(s, 1);
    p.C_FindObjectsFinal(s);
    expect(h).toBeDefined();
    expect(() => p.C_GetAttributeValue(s, h!, [{ type: m.CKA_VALUE }])).toThrow(/CKR_ATTRIBUTE_SENSITIVE|CKR_USER_NOT_LOGGED_IN|CKR_ATTRIBUTE_TYPE_INVALID/);
    const attrs = p.C_GetAttributeValue(s, h!, [{ type: m.CKA_EXTRACTABLE }, { type: m.CKA_SENSITIVE }]);
    expect(attrs.map((a) => (a.value as Buffer)[0])).toEqual([0, 1]);
    p.C_CloseSession(s);
    for (const f of filesUnder(rig.tokenDir)) {
      const bytes = readFileSync(f);
      expect(bytes.includes(key.key)).toBe(false);
      expect(bytes.includes(Buffer.from(key.key.toString('hex')))).toBe(false);
    }
  });

  it('enrolment: the server wraps the key for the token, which unwraps it inside; same tokens', () => {
    const server = newTokenKey(4);
    const wrapped = wrapForToken(token.wrappingPublicKey(), server);
    expect(wrapped.includes(server.key)).toBe(false);
    token.unwrapKey(4, wrapped);
    const pan = pans(1)[0]!;
    expect(token.deriver(4).derive(pan, { expiry: '2029-06' })).toBe(deriveToken(pan, { expiry: '2029-06' }, server));
    // the scheme travels with the version (keyForDevice's `scheme`): a pre-migration version unwraps as pan-psn
    token.unwrapKey(14, wrapForToken(token.wrappingPublicKey(), { ...newTokenKey(14), scheme: 'pan-psn' }), 'pan-psn');
    expect(token.schemeOf(14)).toBe('pan-psn');
    // a wrapped key that is not for this token is refused
    expectCode(() => token.unwrapKey(5, randomBytes(256)), ErrorCode.TokenKeyInvalid);
    expect(token.hasKey(5)).toBe(false);
  });

  it('a missing key version, an unknown token and a missing module are coded errors (a wrong PIN: in beforeAll)', () => {
    expectCode(() => token.deriver(9), ErrorCode.TokenHsmKeyMissing);
    expectCode(() => Pkcs11Token.open({ ...rig, tokenLabel: 'nope' }), ErrorCode.TokenHsmUnavailable);
    expectCode(() => Pkcs11Token.open({ ...rig, library: '/nonexistent/lib.so' }), ErrorCode.TokenHsmUnavailable);
  });

  it('a derivation inside the token takes well under a millisecond', () => {
    const d = token.deriver(3);
    const pan = pans(1)[0]!;
    const t: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const a = performance.now();
      d.derive(pan, { expiry: '2029-06' });
      t.push(performance.now() - a);
    }
    t.sort((a, b) => a - b);
    const p99 = t[Math.floor(t.length * 0.99)]!;
    console.log(`SoftHSM2 HMAC derivation: p50 ${t[1000]!.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms`);
    expect(t[1000]!).toBeLessThan(1); // the median; the tail is the machine's load (bench:tap --hsm measures the tap)
  });
});
