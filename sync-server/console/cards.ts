import { luhnOk } from '../../protocol/pan.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { deriveToken, maskPan, type TokenKey } from '../../protocol/token.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';

/** A card the operator typed, as the server keeps it: the token, the masked PAN and the token's first 8 digits. */
export interface TypedCard {
  token: string;
  masked: string;
  tokenPrefix: string;
}

/**
 * Tokenise a card number typed in the console, in memory: the digits go into a buffer that is wiped at once;
 * the PAN is never stored, logged or answered (only the masked PAN and a token prefix).
 * card.bad-pan when the check digit is wrong (the error does not carry the number).
 */
export function tokeniseTyped(pan: string, psn: string | undefined, key: TokenKey | TokenDeriver): TypedCard {
  const b = Buffer.from(pan, 'ascii');
  try {
    if (!/^\d{12,19}$/.test(pan) || !luhnOk(b))
      throw new RcError(ErrorCode.CardBadPan, 'the card number is not valid (length or check digit)', { digits: b.length });
    const p = psn ? psn.toUpperCase() : null;
    const token = 'derive' in key ? key.derive(b, p) : deriveToken(b, p, key);
    return { token, masked: maskPan(b), tokenPrefix: token.slice(0, 8) };
  } finally {
    b.fill(0);
  }
}

// PANTOKEN-MERGE: replaced by the pantoken branch
/** A card typed by a holder or staff, with its expiry: the token and masked PAN, the key version and the expiry as YYYY-MM. */
export function tokeniseHolderCard(pan: string, expiry: string, key: TokenKey | TokenDeriver): TypedCard & { keyVersion: number; expiry: string } {
  const m = /^(\d{2})\s*[/.]?\s*(\d{2}|\d{4})$/.exec(expiry.trim());
  const month = m ? Number(m[1]) : 0;
  if (!m || month < 1 || month > 12) throw new RcError(ErrorCode.CardBadExpiry, 'the expiry date is not MM/YY (the month 01 to 12)');
  const year = m[2]!.length === 2 ? 2000 + Number(m[2]) : Number(m[2]);
  const card = tokeniseTyped(pan, undefined, key);
  return { ...card, keyVersion: key.version, expiry: `${year}-${m[1]}` };
}
