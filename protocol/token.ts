import { createHmac } from 'node:crypto';
import { ErrorCode, RcError } from './errors.js';

/**
 * Card tokenisation, shared by the device (on read) and the server (on import, the console, the cabinet).
 *
 * The input after the PAN depends on the key version's scheme (docs/token-key.md, "The PAN ‖ expiry migration"):
 *  - `pan-expiry` (every key made since issue 15): token = HMAC-SHA256(key of version v, PAN ‖ YYMM)
 *    truncated to 16 bytes, YYMM the card's expiry as four ASCII digits (tag 5F24 or track 2 on the
 *    device; the printed MM/YY in the cabinet; the `expiry` column of the cards file). Only what is
 *    printed on the card goes in, so a card typed by its holder gets the token a validator reads.
 *  - `pan-psn` (key versions made before it): HMAC-SHA256(key, PAN ‖ PSN), PSN the two hex digits of
 *    tag 5F34, "00" when the card has none. Kept so existing registries and device stores keep working
 *    until the operator rotates to a `pan-expiry` version and re-imports the cards.
 * PAN is the ASCII digits. The part after it is always exactly 4 (or 2) characters, so the input's length
 * fixes the PAN's length: PANs of different lengths can never collide.
 * The token is stored together with v so keys can rotate.
 */
export type TokenScheme = 'pan-expiry' | 'pan-psn';
export const TOKEN_SCHEMES = ['pan-expiry', 'pan-psn'] as const satisfies readonly TokenScheme[];
/** The scheme of every key made since the change (a key or deriver without `scheme` uses it). */
export const CURRENT_TOKEN_SCHEME: TokenScheme = 'pan-expiry';

export interface TokenKey {
  version: number;
  key: Buffer; // at least 16 bytes
  /** What follows the PAN in the HMAC input; absent: CURRENT_TOKEN_SCHEME. */
  scheme?: TokenScheme | undefined;
}

/** What of a card, besides its PAN, may go into its token: the expiry as `YYYY-MM` (as read or typed, normalised), and the PSN as read (pan-psn keys only). */
export interface CardTokenData {
  expiry: string | null;
  psn?: string | null | undefined;
}

export const TOKEN_BYTES = 16;

/** A card's token with the version of the key it was derived with. */
export interface KeyedToken {
  token: string; // 32 hex
  keyVersion: number;
}

/** Development key: public, so only for the demo and tests (an explicit --dev-token-key); `start` and enrolment refuse it otherwise (token.dev-key-refused). */
export const DEV_TOKEN_KEY: TokenKey = {
  version: 0,
  key: Buffer.from('5265736964656e74436172642d4445562d6b65792d6e6f742d666f722d757365', 'hex'),
};

/** True when `key` is the public development key (whatever version it is labelled with). */
export function isDevTokenKey(key: Buffer | Uint8Array): boolean {
  return Buffer.from(key).equals(DEV_TOKEN_KEY.key);
}

/** Refuse the development key unless the caller explicitly allowed it (demo, tests). */
export function refuseDevTokenKey(key: Buffer | Uint8Array, allowDev: boolean, where: string): void {
  if (!allowDev && isDevTokenKey(key)) {
    throw new RcError(
      ErrorCode.TokenDevKeyRefused,
      `${where}: the public development token key is refused outside the demo (pass --dev-token-key only for the demo and tests)`,
      {
        where,
      },
    );
  }
}

export function parseTokenScheme(s: string | undefined, fallback: TokenScheme = CURRENT_TOKEN_SCHEME): TokenScheme {
  if (s === undefined || s === '') return fallback;
  if ((TOKEN_SCHEMES as readonly string[]).includes(s)) return s as TokenScheme;
  throw new RcError(ErrorCode.TokenKeyInvalid, `token key scheme must be one of ${TOKEN_SCHEMES.join(', ')}`, { scheme: s.slice(0, 20) });
}

export function parseTokenKey(hex: string, version: number | string, scheme?: TokenScheme): TokenKey {
  // a string must be plain decimal digits: Number('') is 0 (the development key's version), Number(' 1') is 1
  const v = typeof version === 'string' ? (/^\d{1,5}$/.test(version) ? Number(version) : NaN) : version;
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new RcError(ErrorCode.TokenKeyInvalid, 'token key version must be an integer 0..65535', { version: String(version) });
  }
  if (!/^(?:[0-9a-fA-F]{2}){16,64}$/.test(hex)) {
    throw new RcError(ErrorCode.TokenKeyInvalid, 'token key must be 32 to 128 hex digits (16 to 64 bytes)', { length: hex.length });
  }
  return { version: v, key: Buffer.from(hex, 'hex'), ...(scheme ? { scheme } : {}) };
}

/**
 * Key from the environment (RC_TOKEN_KEY hex, RC_TOKEN_KEY_VERSION, RC_TOKEN_KEY_SCHEME: pan-expiry by default), else null.
 */
export function tokenKeyFromEnv(env: NodeJS.ProcessEnv = process.env): TokenKey | null {
  const hex = env.RC_TOKEN_KEY;
  if (!hex) return null;
  return parseTokenKey(hex, env.RC_TOKEN_KEY_VERSION ?? '1', parseTokenScheme(env.RC_TOKEN_KEY_SCHEME));
}

/**
 * The bytes that follow the PAN in the HMAC input under `scheme` (ASCII): `YYMM` (pan-expiry) or the
 * PSN's two upper-case hex digits, "00" when absent (pan-psn). A card whose expiry is missing gets
 * card.missing-data, a malformed one card.bad-expiry: never a token.
 */
export function tokenSuffix(scheme: TokenScheme, card: CardTokenData): Buffer {
  if (scheme === 'pan-psn') {
    const p = card.psn ?? '00';
    if (!/^[0-9A-Fa-f]{2}$/.test(p)) throw new RcError(ErrorCode.CardMissingData, 'PSN must be two hex digits', { psnLength: p.length });
    return Buffer.from(p.toUpperCase(), 'ascii');
  }
  if (card.expiry === null || card.expiry === undefined || card.expiry === '')
    throw new RcError(ErrorCode.CardMissingData, 'the card token needs the expiry date', { missing: 'expiry' });
  const m = /^20(\d\d)-(\d\d)$/.exec(card.expiry);
  const month = m ? Number(m[2]) : NaN;
  if (!m || month < 1 || month > 12)
    throw new RcError(ErrorCode.CardBadExpiry, 'expiry date must be YYYY-MM (2000..2099, month 01..12)', { length: card.expiry.length });
  return Buffer.from(`${m[1]}${m[2]}`, 'ascii');
}

/**
 * Derive the token. `pan` is a Buffer of ASCII digits so the caller can wipe it
 * (`pan.fill(0)`) right after; this function never copies it into a string.
 */
export function deriveToken(pan: Uint8Array, card: CardTokenData, key: TokenKey): string {
  const suffix = tokenSuffix(key.scheme ?? CURRENT_TOKEN_SCHEME, card);
  const mac = createHmac('sha256', key.key);
  mac.update(pan);
  mac.update(suffix);
  return mac.digest().subarray(0, TOKEN_BYTES).toString('hex');
}

/** Masked PAN: first 6 digits, one '*' per hidden digit, last 4. `pan` is ASCII digits. */
export function maskPan(pan: Uint8Array): string {
  const n = pan.length;
  let out = '';
  for (let i = 0; i < n; i++) out += i < 6 || i >= n - 4 ? String.fromCharCode(pan[i]!) : '*';
  return out;
}
