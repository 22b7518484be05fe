import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { parseTypedExpiry } from '../../protocol/pan.js';
import { softDeriver } from '../../protocol/token-hsm.js';
import { DEV_TOKEN_KEY, deriveToken, type TokenKey } from '../../protocol/token.js';
import { tokeniseHolderCard, tokeniseTyped } from '../../sync-server/console/cards.js';
import { bulkTokenizer } from '../../sync-server/tokenize.js';
import { expectRcError } from '../support/errors.js';
import { MIR_PAN, MIR_PAN_BAD_LUHN } from '../support/pans.js';

const KEY: TokenKey = { version: 3, key: Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex') };
const LEGACY: TokenKey = { ...KEY, version: 2, scheme: 'pan-psn' };

describe('the token from what is printed on the card (PAN ‖ expiry)', () => {
  it('known answers: HMAC-SHA256(key, PAN ‖ YYMM) truncated to 16 bytes', () => {
    // fixed vectors: a change of the derivation breaks every registry and device store, so it must break this test
    expect(deriveToken(Buffer.from(MIR_PAN), { expiry: '2028-12' }, KEY)).toBe('051e0377dd71d50fff2896ca2d99e9bd');
    expect(deriveToken(Buffer.from(MIR_PAN), { expiry: '2029-01' }, KEY)).toBe('8bee7cb4d5171a1ae5d10788d5834511');
    expect(deriveToken(Buffer.from('2204098765432103'), { expiry: '2027-03' }, KEY)).toBe('60963ce415b449ad7b95a58beffab7e7');
    expect(deriveToken(Buffer.from(MIR_PAN), { expiry: '2028-12' }, DEV_TOKEN_KEY)).toBe('c383d3843dd3c8ec59e6d583d84f9df2');
    const independent = createHmac('sha256', KEY.key).update(`${MIR_PAN}2812`, 'ascii').digest().subarray(0, 16).toString('hex');
    expect(deriveToken(Buffer.from(MIR_PAN), { expiry: '2028-12' }, KEY)).toBe(independent);
  });

  it('the PSN does not enter a pan-expiry token (the holder cannot type it)', () => {
    const t = deriveToken(Buffer.from(MIR_PAN), { expiry: '2028-12' }, KEY);
    expect(deriveToken(Buffer.from(MIR_PAN), { expiry: '2028-12', psn: '01' }, KEY)).toBe(t);
    expect(deriveToken(Buffer.from(MIR_PAN), { expiry: '2028-12', psn: '02' }, KEY)).toBe(t);
  });

  it('a pan-psn key version (made before the migration) keeps its old tokens: PAN ‖ PSN, "00" without one', () => {
    const old = (s: string) => createHmac('sha256', KEY.key).update(s, 'ascii').digest().subarray(0, 16).toString('hex');
    expect(deriveToken(Buffer.from(MIR_PAN), { expiry: '2028-12', psn: '01' }, LEGACY)).toBe(old(`${MIR_PAN}01`));
    expect(deriveToken(Buffer.from(MIR_PAN), { expiry: null }, LEGACY)).toBe(old(`${MIR_PAN}00`));
  });

  it('a card without an expiry, or with a malformed one, gets a coded error and no token', () => {
    expectRcError(() => deriveToken(Buffer.from(MIR_PAN), { expiry: null }, KEY), ErrorCode.CardMissingData);
    expectRcError(() => deriveToken(Buffer.from(MIR_PAN), { expiry: '2028-13' }, KEY), ErrorCode.CardBadExpiry);
    expectRcError(() => deriveToken(Buffer.from(MIR_PAN), { expiry: '12/28' }, KEY), ErrorCode.CardBadExpiry);
    expectRcError(() => bulkTokenizer(KEY)(Buffer.from(MIR_PAN), { expiry: null }), ErrorCode.CardMissingData);
  });

  it('the bulk tokenizer and the soft deriver give deriveToken under either scheme', () => {
    for (const k of [KEY, LEGACY, { ...KEY, key: Buffer.alloc(100, 7) }]) {
      const card = { expiry: '2031-07', psn: '03' };
      expect(bulkTokenizer(k)(Buffer.from(MIR_PAN), card)).toBe(deriveToken(Buffer.from(MIR_PAN), card, k));
      expect(softDeriver(k).derive(Buffer.from(MIR_PAN), card)).toBe(deriveToken(Buffer.from(MIR_PAN), card, k));
    }
  });
});

describe('parseTypedExpiry', () => {
  it('reads the printed forms as YYYY-MM', () => {
    expect(parseTypedExpiry('12/28')).toBe('2028-12');
    expect(parseTypedExpiry('1228')).toBe('2028-12');
    expect(parseTypedExpiry('12/2028')).toBe('2028-12');
    expect(parseTypedExpiry('12.28')).toBe('2028-12');
    expect(parseTypedExpiry(' 01/30 ')).toBe('2030-01');
  });

  it('refuses malformed dates and months outside 1..12 with card.bad-expiry', () => {
    for (const bad of ['', '13/28', '00/28', '1/28', '12-28', '12/2', '12/1928', '2028-12', 'ab/cd', '12/28x', '123/28']) {
      expectRcError(() => parseTypedExpiry(bad), ErrorCode.CardBadExpiry);
    }
  });
});

describe('tokeniseHolderCard', () => {
  it('gives the token, masked PAN, token prefix, key version and YYYY-MM expiry of a typed card', () => {
    const c = tokeniseHolderCard(MIR_PAN, '12/28', KEY);
    expect(c).toEqual({
      token: '051e0377dd71d50fff2896ca2d99e9bd',
      masked: '220012******9019',
      tokenPrefix: '051e0377',
      keyVersion: 3,
      expiry: '2028-12',
    });
    // every printed form, and a deriver instead of a key, give the same card
    for (const e of ['1228', '12/2028', '12.28']) expect(tokeniseHolderCard(MIR_PAN, e, KEY)).toEqual(c);
    expect(tokeniseHolderCard(MIR_PAN, '12/28', softDeriver(KEY))).toEqual(c);
  });

  it('refuses a bad number or a bad expiry with coded errors that do not carry the number', () => {
    const e1 = expectRcError(() => tokeniseHolderCard(MIR_PAN_BAD_LUHN, '12/28', KEY), ErrorCode.CardBadPan);
    const e2 = expectRcError(() => tokeniseHolderCard('22001234', '12/28', KEY), ErrorCode.CardBadPan);
    const e3 = expectRcError(() => tokeniseHolderCard(MIR_PAN, '13/28', KEY), ErrorCode.CardBadExpiry);
    for (const e of [e1, e2, e3]) {
      const text = JSON.stringify({ m: e.message, c: e.context });
      expect(text).not.toContain(MIR_PAN_BAD_LUHN);
      expect(text).not.toContain(MIR_PAN);
      expect(text).not.toContain('22001234');
    }
  });

  it('refuses a key version still on PAN ‖ PSN (a typed card has no PSN)', () => {
    expectRcError(() => tokeniseHolderCard(MIR_PAN, '12/28', LEGACY), ErrorCode.TokenSchemeMismatch);
  });

  it("the console's typed card (stop-list, journal search) is the same token", () => {
    expect(tokeniseTyped(MIR_PAN, { expiry: '12/28' }, KEY).token).toBe('051e0377dd71d50fff2896ca2d99e9bd');
    expect(tokeniseTyped(MIR_PAN, { expiry: '2028-12' }, KEY).token).toBe('051e0377dd71d50fff2896ca2d99e9bd');
    expectRcError(() => tokeniseTyped(MIR_PAN, {}, KEY), ErrorCode.CardMissingData);
  });
});
