import { createHmac } from 'node:crypto';
import { ErrorCode, RcError } from './errors.js';

/**
 * Card tokenisation, shared by the device (on read) and the server (on import).
 *
 * token = HMAC-SHA256(key of version v, PAN ‖ PSN) truncated to 16 bytes.
 * PAN is the ASCII digits; PSN is the two-digit string as read (tag 5F34, one
 * byte shown as 2 hex digits), and "00" when the card has none (EMV treats an
 * absent PSN as 00). The PSN part is therefore always exactly two characters,
 * so the input's length fixes the PAN's length: a 16-digit PAN with PSN "01"
 * and an 18-digit PAN ending in "01" can never collide.
 * The token is stored together with v so keys can rotate.
 */
export interface TokenKey {
  version: number;
  key: Buffer; // at least 16 bytes
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

export function parseTokenKey(hex: string, version: number | string): TokenKey {
  // a string must be plain decimal digits: Number('') is 0 (the development key's version), Number(' 1') is 1
  const v = typeof version === 'string' ? (/^\d{1,5}$/.test(version) ? Number(version) : NaN) : version;
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new RcError(ErrorCode.TokenKeyInvalid, 'token key version must be an integer 0..65535', { version: String(version) });
  }
  if (!/^(?:[0-9a-fA-F]{2}){16,64}$/.test(hex)) {
    throw new RcError(ErrorCode.TokenKeyInvalid, 'token key must be 32 to 128 hex digits (16 to 64 bytes)', { length: hex.length });
  }
  return { version: v, key: Buffer.from(hex, 'hex') };
}

/**
 * Key from the environment (RC_TOKEN_KEY hex, RC_TOKEN_KEY_VERSION), else null.
 */
export function tokenKeyFromEnv(env: NodeJS.ProcessEnv = process.env): TokenKey | null {
  const hex = env.RC_TOKEN_KEY;
  if (!hex) return null;
  return parseTokenKey(hex, env.RC_TOKEN_KEY_VERSION ?? '1');
}

/**
 * Derive the token. `pan` is a Buffer of ASCII digits so the caller can wipe it
 * (`pan.fill(0)`) right after; this function never copies it into a string.
 */
export function deriveToken(pan: Uint8Array, psn: string | null, key: TokenKey): string {
  const mac = createHmac('sha256', key.key);
  mac.update(pan);
  const p = psn ?? '00';
  if (!/^[0-9A-Fa-f]{2}$/.test(p)) throw new RcError(ErrorCode.CardMissingData, 'PSN must be two hex digits', { psnLength: p.length });
  mac.update(p.toUpperCase(), 'ascii');
  return mac.digest().subarray(0, TOKEN_BYTES).toString('hex');
}

/** Masked PAN: first 6 digits, one '*' per hidden digit, last 4. `pan` is ASCII digits. */
export function maskPan(pan: Uint8Array): string {
  const n = pan.length;
  let out = '';
  for (let i = 0; i < n; i++) out += i < 6 || i >= n - 4 ? String.fromCharCode(pan[i]!) : '*';
  return out;
}
