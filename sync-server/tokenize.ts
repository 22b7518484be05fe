import { createHash, type Hash } from 'node:crypto';
import { ErrorCode, RcError } from '../protocol/errors.js';
import { CURRENT_TOKEN_SCHEME, TOKEN_BYTES, parseTokenScheme, tokenSuffix, type CardTokenData, type TokenKey, type TokenScheme } from '../protocol/token.js';
import type { Db } from './registry.js';

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

/**
 * The token scheme of every key version the registry has tokenised with (docs/token-key.md, "The PAN ‖
 * expiry migration"): `token_key_schemes(version, scheme)`. A registry from before the table existed made
 * all its tokens with PAN ‖ PSN, so its upgrade (db/migrations/legacy.ts) recorded every key version its cards
 * held as pan-psn; from then on the server records the scheme of the key it starts with. Key versions retired
 * by rc-sync-server key retire (key-retire.ts) are in `token_key_retired`: never started with again.
 */

/** When a key version was retired (ISO), or null. */
export function retiredKeyVersion(db: Db, version: number): string | null {
  return (db.prepare('SELECT retired_at FROM token_key_retired WHERE version = ?').pluck().get(version) as string | undefined) ?? null;
}

/** The scheme the registry recorded for a key version, or null when it has not tokenised with it yet. */
export function recordedKeyScheme(db: Db, version: number): TokenScheme | null {
  const r = db.prepare('SELECT scheme FROM token_key_schemes WHERE version = ?').pluck().get(version) as string | undefined;
  return r === undefined ? null : parseTokenScheme(r);
}

/**
 * At start: a retired key version is refused (token.key-version-retired: it would tokenise and be handed to
 * devices again); the version is recorded as the one in use (meta 'token.key-version'). The server's key version
 * must derive with the scheme its tokens in the registry were made with.
 * A version not seen before is recorded with the key's scheme. A mismatch (an `RC_TOKEN_KEY` of a
 * pre-migration version started without `RC_TOKEN_KEY_SCHEME=pan-psn`) is token.scheme-mismatch: starting
 * would make every card of the registry unrecognisable at the next import.
 */
export function checkKeyScheme(db: Db, version: number, scheme: TokenScheme): void {
  const retired = retiredKeyVersion(db, version);
  if (retired !== null)
    throw new RcError(
      ErrorCode.TokenKeyVersionRetired,
      `key version ${version} was retired (${retired}): start with the current version (docs/token-key.md, "Retiring a version")`,
      { keyVersion: version, retiredAt: retired },
    );
  const recorded = recordedKeyScheme(db, version);
  if (recorded === null) {
    db.prepare('INSERT INTO token_key_schemes(version, scheme, recorded_at) VALUES (?, ?, ?)').run(version, scheme, new Date().toISOString());
  } else if (recorded !== scheme) {
    throw new RcError(
      ErrorCode.TokenSchemeMismatch,
      `the registry's tokens of key version ${version} are ${recorded}, but the key is given as ${scheme}: ${
        recorded === 'pan-psn' ? 'set RC_TOKEN_KEY_SCHEME=pan-psn until you rotate to a new version' : 'set RC_TOKEN_KEY_SCHEME=pan-expiry'
      } (docs/token-key.md)`,
      { keyVersion: version, recorded, given: scheme },
    );
  }
  // the version this server tokenises and enrols with: rc-sync-server key retire refuses it
  db.prepare("INSERT INTO meta(key, value) VALUES ('token.key-version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(version));
}
