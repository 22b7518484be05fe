import { luhnOk, parseTypedExpiry } from '../../protocol/pan.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { CURRENT_TOKEN_SCHEME, deriveToken, maskPan, type TokenKey } from '../../protocol/token.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';

/**
 * A typed card as the server keeps it: the token, the masked PAN, the token's first 8 digits, the key version
 * the token was derived with and the expiry as `YYYY-MM` (the registry's `cards.expiry`).
 */
export interface TypedCard {
  token: string;
  masked: string;
  tokenPrefix: string;
  keyVersion: number;
  expiry: string;
}

/**
 * Tokenise a card number typed in the console, in memory: the digits go into a buffer that is wiped at once;
 * the PAN is never stored, logged or answered (only the masked PAN and a token prefix).
 * `expiry` is the printed one as typed (MM/YY, MMYY, MM/YYYY, MM.YY: parseTypedExpiry) or already `YYYY-MM`;
 * absent: card.missing-data under a pan-expiry key.
 * card.bad-pan when the length or check digit is wrong, card.bad-expiry when the expiry is malformed
 * (neither error carries the number). A key whose version is still pan-psn (before the PAN ‖ expiry
 * migration) tokenises with `psn` (absent: "00"), as the console did before.
 */
export function tokeniseTyped(pan: string, card: { expiry?: string | undefined; psn?: string | undefined }, key: TokenKey | TokenDeriver): TypedCard {
  return tokenise(pan, card.expiry ? normaliseExpiry(card.expiry) : '', card.psn, key);
}

/**
 * The token of a card its holder typed in the cabinet (or a bank sent, or the staff typed): PAN and the
 * expiry printed on the card (`MM/YY`; also `MMYY`, `MM/YYYY`, `MM.YY`). The token equals the one a
 * validator derives when the same card is tapped (test/integration/token-typed-tap.pcscd.test.ts), so
 * "connect and then tap" works. card.bad-pan (length or Luhn), card.bad-expiry (malformed, month outside
 * 1..12); the error never carries the number. Needs a key version of the pan-expiry scheme (every key made
 * since the migration): a pan-psn key cannot tokenise a typed card (its PSN is not printed), token.scheme-mismatch.
 */
export function tokeniseHolderCard(pan: string, expiry: string, key: TokenKey | TokenDeriver): TypedCard {
  const ym = parseTypedExpiry(expiry);
  const scheme = key.scheme ?? CURRENT_TOKEN_SCHEME;
  if (scheme !== 'pan-expiry')
    throw new RcError(
      ErrorCode.TokenSchemeMismatch,
      `key version ${key.version} tokenises PAN ‖ PSN: a typed card cannot be tokenised with it (rotate to a new key version, docs/token-key.md)`,
      { keyVersion: key.version, scheme },
    );
  return tokenise(pan, ym, undefined, key);
}

/** `YYYY-MM` as it is, else the printed forms parseTypedExpiry takes. */
function normaliseExpiry(expiry: string): string {
  return /^\d{4}-\d{2}$/.test(expiry) ? expiry : parseTypedExpiry(expiry);
}

function tokenise(pan: string, expiry: string, psn: string | undefined, key: TokenKey | TokenDeriver): TypedCard {
  const b = Buffer.from(pan, 'ascii');
  try {
    if (!/^\d{12,19}$/.test(pan) || !luhnOk(b))
      throw new RcError(ErrorCode.CardBadPan, 'the card number is not valid (length or check digit)', { digits: b.length });
    const card = { expiry: expiry || null, psn: psn ? psn.toUpperCase() : null };
    const token = 'derive' in key ? key.derive(b, card) : deriveToken(b, card, key);
    return { token, masked: maskPan(b), tokenPrefix: token.slice(0, 8), keyVersion: key.version, expiry };
  } finally {
    b.fill(0);
  }
}
