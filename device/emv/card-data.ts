import { ErrorCode, RcError } from '../../protocol/errors.js';
import { luhnOk } from '../../protocol/pan.js';

/**
 * Decoding of the card data elements the read needs. PAN digits go into a
 * Buffer of ASCII digits that the caller wipes; nothing here builds a string
 * from them, and errors carry lengths only.
 */

/** Luhn check over ASCII digits. */
export { luhnOk };

function badPan(message: string, context: Record<string, unknown>): RcError {
  return new RcError(ErrorCode.CardBadPan, message, context);
}

/** Validate an ASCII-digit PAN buffer: 12..19 digits, Luhn. Throws card.bad-pan (wipes nothing: the caller owns the buffer). */
export function checkPan(pan: Uint8Array, source: string): void {
  if (pan.length < 12 || pan.length > 19) throw badPan('card number has a length outside 12..19 digits', { source, digits: pan.length });
  if (!luhnOk(pan)) throw badPan('card number fails the Luhn check', { source, digits: pan.length });
}

/**
 * PAN from tag 5A (compressed numeric: BCD digits, right-padded with F).
 * Returns a new Buffer of ASCII digits; throws card.bad-pan on a non-digit nibble.
 */
export function panFrom5A(value: Uint8Array): Buffer {
  const out = Buffer.alloc(value.length * 2);
  let n = 0;
  let ended = false;
  for (let i = 0; i < value.length * 2; i++) {
    const b = value[i >> 1]!;
    const nib = i % 2 === 0 ? b >> 4 : b & 15;
    if (nib === 0xf) {
      ended = true;
      continue;
    }
    if (ended || nib > 9) {
      out.fill(0);
      throw badPan('card number (5A) holds a non-digit', { source: '5A', bytes: value.length });
    }
    out[n++] = 0x30 + nib;
  }
  const pan = Buffer.from(out.subarray(0, n));
  out.fill(0);
  return pan;
}

export interface Track2 {
  pan: Buffer; // ASCII digits, caller wipes
  expiry: string | null; // YYYY-MM
}

/**
 * Track 2 equivalent data (tag 57): PAN, separator D, YYMM expiry, service code,
 * discretionary data, F padding. Returns the PAN digits and the expiry.
 */
export function parseTrack2(value: Uint8Array): Track2 {
  const nibbles = value.length * 2;
  const pan = Buffer.alloc(Math.min(nibbles, 19));
  let n = 0;
  let i = 0;
  try {
    for (; i < nibbles; i++) {
      const b = value[i >> 1]!;
      const nib = i % 2 === 0 ? b >> 4 : b & 15;
      if (nib === 0xd) break;
      if (nib > 9 || n >= 19) throw badPan('track 2 equivalent data holds no valid card number', { source: '57', bytes: value.length });
      pan[n++] = 0x30 + nib;
    }
    if (i >= nibbles) throw badPan('track 2 equivalent data has no separator', { source: '57', bytes: value.length });
    // YYMM after the separator
    let expiry: string | null = null;
    if (i + 4 < nibbles) {
      const d: number[] = [];
      for (let k = i + 1; k <= i + 4; k++) {
        const b = value[k >> 1]!;
        d.push(k % 2 === 0 ? b >> 4 : b & 15);
      }
      expiry = expiryFromDigits(d, '57');
    } else {
      throw new RcError(ErrorCode.CardBadExpiry, 'track 2 equivalent data ends before the expiry date', { source: '57' });
    }
    const out = Buffer.from(pan.subarray(0, n));
    return { pan: out, expiry };
  } finally {
    pan.fill(0);
  }
}

function expiryFromDigits(d: number[], source: string): string {
  if (d.some((x) => x > 9)) throw new RcError(ErrorCode.CardBadExpiry, 'expiry date is not decimal', { source });
  const yy = d[0]! * 10 + d[1]!;
  const mm = d[2]! * 10 + d[3]!;
  if (mm < 1 || mm > 12) throw new RcError(ErrorCode.CardBadExpiry, 'expiry month out of range', { source, month: mm });
  return `${2000 + yy}-${String(mm).padStart(2, '0')}`;
}

/** Expiry from tag 5F24 (YYMMDD, BCD) as YYYY-MM. */
export function expiryFrom5F24(value: Uint8Array): string {
  if (value.length !== 3) throw new RcError(ErrorCode.CardBadExpiry, 'expiry date (5F24) must be 3 bytes', { source: '5F24', bytes: value.length });
  const d = [value[0]! >> 4, value[0]! & 15, value[1]! >> 4, value[1]! & 15];
  return expiryFromDigits(d, '5F24');
}

/** PSN from tag 5F34: one byte shown as 2 upper-case hex digits. */
export function psnFrom5F34(value: Uint8Array): string {
  if (value.length !== 1) throw new RcError(ErrorCode.CardBadResponse, 'PAN sequence number (5F34) must be 1 byte', { tag: '5F34', bytes: value.length });
  return value[0]!.toString(16).toUpperCase().padStart(2, '0');
}

/** Payment Account Reference (9F24): printable ASCII, up to 29 characters. */
export function parFrom9F24(value: Uint8Array): string {
  if (value.length === 0 || value.length > 29 || value.some((b) => b < 0x20 || b > 0x7e)) {
    throw new RcError(ErrorCode.CardBadResponse, 'payment account reference (9F24) is not 1..29 printable characters', { tag: '9F24', bytes: value.length });
  }
  return Buffer.from(value).toString('ascii');
}
