import { createHash, type Hash } from 'node:crypto';
import { CURRENT_TOKEN_SCHEME, TOKEN_BYTES, tokenSuffix, type CardTokenData, type TokenKey } from '../protocol/token.js';

/**
 * The same token as protocol/token.ts deriveToken (HMAC-SHA256(key, PAN ‖ YYMM), or PAN ‖ PSN for a
 * pan-psn key version, truncated to 16 bytes), for bulk imports: the keyed inner and outer hash
 * states are computed once and copied per card, which halves the cost of a
 * million-row import. A unit test pins it to deriveToken.
 */
export function bulkTokenizer(key: TokenKey): (pan: Uint8Array, card: CardTokenData) => string {
  const scheme = key.scheme ?? CURRENT_TOKEN_SCHEME;
  const BLOCK = 64;
  const k = key.key.length > BLOCK ? createHash('sha256').update(key.key).digest() : key.key;
  const ipad = Buffer.alloc(BLOCK, 0x36);
  const opad = Buffer.alloc(BLOCK, 0x5c);
  for (let i = 0; i < k.length; i++) {
    ipad[i] = ipad[i]! ^ k[i]!;
    opad[i] = opad[i]! ^ k[i]!;
  }
  const inner: Hash = createHash('sha256').update(ipad);
  const outer: Hash = createHash('sha256').update(opad);
  ipad.fill(0);
  opad.fill(0);
  return (pan, card) => {
    const suffix = tokenSuffix(scheme, card); // as deriveToken: the same checks and coded errors
    const h = inner.copy().update(pan);
    h.update(suffix);
    return outer.copy().update(h.digest()).digest().subarray(0, TOKEN_BYTES).toString('hex');
  };
}
