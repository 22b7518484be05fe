import { ErrorCode, RcError } from './errors.js';

/**
 * Card-number checks shared by the device (EMV read, on a buffer of ASCII
 * digits it wipes afterwards) and the server (CSV import, on the row's text).
 */

/** Luhn (mod 10) check over ASCII digits, given as a string or a byte buffer. */
export function luhnOk(digits: string | Uint8Array): boolean {
  const at = typeof digits === 'string' ? (i: number) => digits.charCodeAt(i) : (i: number) => digits[i]!;
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = at(i) - 0x30;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

/** `body` followed by its Luhn check digit: synthetic card numbers (demo, tests) that pass luhnOk. */
export function withLuhnDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnOk(body + d)) return body + d;
  throw new Error(`not a string of digits: length ${body.length}`);
}

/**
 * The expiry printed on a card (`MM/YY`; also `MMYY`, `MM/YYYY`, `MM.YY`, surrounding spaces ignored) as
 * `YYYY-MM`, the form the card read (tag 5F24 / track 2), the registry's `cards.expiry` and the token use.
 * card.bad-expiry when it is malformed or its month is outside 1..12 (the error carries its length only).
 */
export function parseTypedExpiry(typed: string): string {
  const s = typed.trim();
  const m = /^(\d{2})(?:\/(\d{2}|\d{4})|\.(\d{2})|(\d{2}))$/.exec(s);
  const mm = m ? Number(m[1]) : NaN;
  const y = m ? (m[2] ?? m[3] ?? m[4])! : '';
  if (!m || mm < 1 || mm > 12 || (y.length === 4 && !y.startsWith('20'))) {
    throw new RcError(ErrorCode.CardBadExpiry, 'the expiry date must be MM/YY as printed on the card (month 01..12)', { length: typed.length });
  }
  return `${y.length === 4 ? y : `20${y}`}-${m[1]}`;
}
