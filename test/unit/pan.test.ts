import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { luhnOk, withLuhnDigit } from '../../protocol/pan.js';

describe('luhnOk (shared by the EMV read and the server import)', () => {
  it('accepts valid and refuses altered card numbers', () => {
    expect(luhnOk('2200123456789019')).toBe(true);
    expect(luhnOk('2200123456789018')).toBe(false);
    expect(luhnOk(Buffer.from('4111111111111111'))).toBe(true);
  });

  it('gives the same answer for a buffer of ASCII digits as for the string', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\d{12,19}$/), (digits) => {
        expect(luhnOk(Buffer.from(digits, 'ascii'))).toBe(luhnOk(digits));
      }),
    );
  });

  it('withLuhnDigit appends the one check digit that makes a number pass', () => {
    expect(withLuhnDigit('220012345678901')).toBe('2200123456789019');
    fc.assert(
      fc.property(fc.stringMatching(/^\d{11,18}$/), (body) => {
        const pan = withLuhnDigit(body);
        expect(pan.slice(0, -1)).toBe(body);
        expect(luhnOk(pan)).toBe(true);
      }),
    );
  });

  it('catches every single-digit change of a valid number', () => {
    const valid = '2200123456789019';
    for (let i = 0; i < valid.length; i++) {
      for (let d = 0; d <= 9; d++) {
        if (String(d) === valid[i]) continue;
        expect(luhnOk(valid.slice(0, i) + d + valid.slice(i + 1))).toBe(false);
      }
    }
  });
});
