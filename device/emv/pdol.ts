import { randomBytes } from 'node:crypto';
import type { DolEntry } from './tlv.js';

/**
 * Terminal data for the PDOL of a contactless identification read: no amount,
 * Russia (643) as country and currency, today's date, a purchase, a fresh
 * unpredictable number. Tags we do not know are zero-filled to their length.
 */

/** Terminal Transaction Qualifiers: contactless EMV (qVSDC-style) read, online capable, consumer device CVM supported. */
export const TTQ = Buffer.from('36004000', 'hex');

/** Numeric (n) data elements: padded/truncated on the left, per EMV Book 3 §5.4. */
const NUMERIC = new Set(['9F02', '9F03', '9F1A', '5F2A', '9A', '9C', '9F21']);

function bcd2(n: number): number {
  return ((Math.floor(n / 10) % 10) << 4) | (n % 10);
}

/** The terminal's value for a tag, or undefined when we do not know it. */
export function terminalValue(tag: string, now: Date): Uint8Array | undefined {
  switch (tag) {
    case '9F66':
      return TTQ;
    case '9F02': // amount, authorised: 0
    case '9F03': // amount, other: 0
      return Buffer.alloc(6);
    case '9F1A': // terminal country code: Russia
    case '5F2A': // transaction currency code: rouble
      return Buffer.from('0643', 'hex');
    case '9A': // transaction date YYMMDD (UTC)
      return Buffer.from([bcd2(now.getUTCFullYear() % 100), bcd2(now.getUTCMonth() + 1), bcd2(now.getUTCDate())]);
    case '9F21': // transaction time HHMMSS (UTC)
      return Buffer.from([bcd2(now.getUTCHours()), bcd2(now.getUTCMinutes()), bcd2(now.getUTCSeconds())]);
    case '9C': // transaction type: purchase
      return Buffer.from([0x00]);
    case '9F37': // unpredictable number
      return randomBytes(4);
    case '95': // terminal verification results: nothing to report
      return Buffer.alloc(5);
    case '9F35': // terminal type: unattended, offline with online capability, operated by merchant
      return Buffer.from([0x25]);
    case '9F33': // terminal capabilities: no CVM, no card data input other than ICC
      return Buffer.from('E00800', 'hex');
    case '9F40': // additional terminal capabilities
      return Buffer.alloc(5);
    default:
      return undefined;
  }
}

/** Concatenated PDOL data, each value fitted to the length the card asked for. */
export function fillPdol(dol: readonly DolEntry[], now: Date): Buffer {
  const parts: Buffer[] = [];
  for (const { tag, length } of dol) {
    const v = terminalValue(tag, now);
    const out = Buffer.alloc(length);
    if (v) {
      if (NUMERIC.has(tag)) {
        // right-align: keep the rightmost digits, pad with zeros on the left
        const src = v.subarray(Math.max(0, v.length - length));
        out.set(src, length - src.length);
      } else {
        out.set(v.subarray(0, Math.min(length, v.length)), 0);
      }
    }
    parts.push(out);
  }
  return Buffer.concat(parts);
}
