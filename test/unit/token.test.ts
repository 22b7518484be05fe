import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { resolveTokenKey } from '../../device/emv/token-key.js';
import { expectRcError } from '../support/errors.js';
import { DEV_TOKEN_KEY, TOKEN_BYTES, deriveToken, maskPan, parseTokenKey, tokenKeyFromEnv, type TokenKey } from '../../protocol/token.js';
import { MIR_PAN, MIR_PAN_2 } from '../support/pans.js';

const KEY_HEX = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const KEY: TokenKey = { version: 3, key: Buffer.from(KEY_HEX, 'hex') };
const PAN = MIR_PAN;

function captureLog(): { lines: { level: string; obj: object; msg: string }[]; warn(o: object, m: string): void; info(o: object, m: string): void } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  return { lines, warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }), info: (obj, msg) => lines.push({ level: 'info', obj, msg }) };
}

/** The key as a version from before the PAN ‖ expiry migration: these pin the old derivation that existing registries and device stores hold. */
const legacy = (k: TokenKey): TokenKey => ({ ...k, scheme: 'pan-psn' });

describe('deriveToken under a pan-psn key version (before the migration)', () => {
  it('is HMAC-SHA256(key, PAN ‖ PSN) truncated to 16 bytes, as 32 hex digits', () => {
    const expected = createHmac('sha256', KEY.key).update(`${PAN}01`, 'ascii').digest().subarray(0, 16).toString('hex');
    expect(TOKEN_BYTES).toBe(16);
    expect(deriveToken(Buffer.from(PAN), { expiry: null, psn: '01' }, legacy(KEY))).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{32}$/);
  });

  it('a card without PSN is tokenised as PSN 00 (the same card, read with or without its PSN, keeps its token)', () => {
    const expected = createHmac('sha256', KEY.key).update(`${PAN}00`, 'ascii').digest().subarray(0, 16).toString('hex');
    expect(deriveToken(Buffer.from(PAN), { expiry: null, psn: null }, legacy(KEY))).toBe(expected);
    expect(deriveToken(Buffer.from(PAN), { expiry: null, psn: '00' }, legacy(KEY))).toBe(expected);
  });

  it('a longer PAN without PSN never collides with a shorter PAN plus PSN (PAN ‖ PSN is length-unambiguous)', () => {
    // 16-digit PAN + PSN "01" vs the 18-digit PAN made of the same digits and no PSN.
    expect(deriveToken(Buffer.from(`${PAN}01`), { expiry: null, psn: null }, legacy(KEY))).not.toBe(
      deriveToken(Buffer.from(PAN), { expiry: null, psn: '01' }, legacy(KEY)),
    );
  });

  it('a PSN that is not two hex digits is refused with a coded error', () => {
    expect(() => deriveToken(Buffer.from(PAN), { expiry: null, psn: '1' }, legacy(KEY))).toThrow(expect.objectContaining({ code: 'card.missing-data' }));
  });

  it('another PSN, another PAN or another key gives another token', () => {
    const base = deriveToken(Buffer.from(PAN), { expiry: null, psn: '01' }, legacy(KEY));
    expect(deriveToken(Buffer.from(PAN), { expiry: null, psn: '02' }, legacy(KEY))).not.toBe(base);
    expect(deriveToken(Buffer.from(MIR_PAN_2), { expiry: null, psn: '01' }, legacy(KEY))).not.toBe(base);
    expect(deriveToken(Buffer.from(PAN), { expiry: null, psn: '01' }, legacy(DEV_TOKEN_KEY))).not.toBe(base);
  });

  it('leaves the PAN buffer to the caller, who can wipe it right after', () => {
    const pan = Buffer.from(PAN);
    const t = deriveToken(pan, { expiry: null, psn: '01' }, legacy(KEY));
    expect(pan.toString()).toBe(PAN);
    pan.fill(0);
    expect(pan.every((b) => b === 0)).toBe(true);
    expect(deriveToken(Buffer.from(PAN), { expiry: null, psn: '01' }, legacy(KEY))).toBe(t);
  });
});

describe('maskPan', () => {
  it('keeps the first 6 and last 4 digits with one * per hidden digit', () => {
    expect(maskPan(Buffer.from('2200123456789019'))).toBe('220012******9019');
    expect(maskPan(Buffer.from('2200123456789012341'))).toBe('220012*********2341');
    expect(maskPan(Buffer.from('220012345678'))).toBe('220012**5678');
  });
});

describe('token keys', () => {
  it('parses a hex key of 16..64 bytes with a version 0..65535', () => {
    expect(parseTokenKey(KEY_HEX, '7')).toEqual({ version: 7, key: Buffer.from(KEY_HEX, 'hex') });
    expect(parseTokenKey(KEY_HEX.slice(0, 32), 65535).version).toBe(65535);
  });

  it('refuses short, odd, non-hex keys and bad versions with token.key-invalid, without echoing the key', () => {
    for (const [hex, v] of [
      [KEY_HEX.slice(0, 30), 1],
      [`${KEY_HEX}0`, 1],
      [`${KEY_HEX.slice(0, 62)}zz`, 1],
      [KEY_HEX, -1],
      [KEY_HEX, 65536],
      [KEY_HEX, 1.5],
      [KEY_HEX, ''],
      [KEY_HEX, ' 1'],
      [KEY_HEX, '1e0'],
      [KEY_HEX, '0x10'],
    ] as const) {
      expectRcError(() => parseTokenKey(hex, v), 'token.key-invalid');
      try {
        parseTokenKey(hex, v);
      } catch (e) {
        expect(JSON.stringify(e)).not.toContain(KEY_HEX.slice(0, 30));
      }
    }
  });

  it('reads RC_TOKEN_KEY / RC_TOKEN_KEY_VERSION (default version 1), null when unset', () => {
    expect(tokenKeyFromEnv({})).toBeNull();
    expect(tokenKeyFromEnv({ RC_TOKEN_KEY: KEY_HEX })?.version).toBe(1);
    expect(tokenKeyFromEnv({ RC_TOKEN_KEY: KEY_HEX, RC_TOKEN_KEY_VERSION: '4' })?.version).toBe(4);
    expectRcError(() => tokenKeyFromEnv({ RC_TOKEN_KEY: KEY_HEX, RC_TOKEN_KEY_VERSION: '' }), 'token.key-invalid');
  });
});

describe('resolveTokenKey', () => {
  it('the environment key wins over the configured one, with a warning', () => {
    const log = captureLog();
    const k = resolveTokenKey(KEY_HEX.replace(/0/g, '1'), 9, log, { RC_TOKEN_KEY: KEY_HEX, RC_TOKEN_KEY_VERSION: '2' });
    expect(k).toMatchObject({ version: 2, source: 'env' });
    expect(k.key.toString('hex')).toBe(KEY_HEX);
    expect(log.lines.map((l) => l.level)).toEqual(['warn']);
  });

  it('uses the configured key and version when the environment has none', () => {
    const log = captureLog();
    const k = resolveTokenKey(KEY_HEX, '5', log, {});
    expect(k).toMatchObject({ version: 5, source: 'config' });
    expect(resolveTokenKey(KEY_HEX, undefined, log, {}).version).toBe(1);
    expect(log.lines).toEqual([]);
  });

  it('falls back to the development key with a warning when nothing is configured', () => {
    const log = captureLog();
    const k = resolveTokenKey(undefined, undefined, log, {});
    expect(k).toMatchObject({ version: DEV_TOKEN_KEY.version, source: 'dev' });
    expect(k.key.equals(DEV_TOKEN_KEY.key)).toBe(true);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]!.level).toBe('warn');
    expect(log.lines[0]!.msg).toMatch(/development key/);
  });

  it('a key that is set but invalid is an error, never a silent fall-back to the development key', () => {
    const log = captureLog();
    expectRcError(() => resolveTokenKey(undefined, undefined, log, { RC_TOKEN_KEY: 'abcd' }), 'token.key-invalid');
    expectRcError(() => resolveTokenKey('abcd', 1, log, {}), 'token.key-invalid');
  });

  it('never logs the key', () => {
    const log = captureLog();
    resolveTokenKey(KEY_HEX, 1, log, { RC_TOKEN_KEY: KEY_HEX });
    resolveTokenKey(undefined, undefined, log, {});
    const text = JSON.stringify(log.lines);
    expect(text).not.toContain(KEY_HEX.slice(0, 16));
    expect(text).not.toContain(DEV_TOKEN_KEY.key.toString('hex').slice(0, 16));
  });
});
