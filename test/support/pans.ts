/**
 * Card numbers for tests: synthetic and Luhn-valid (or deliberately not),
 * never a real card's. Tests assert that none of them leaks into a database,
 * log, message or error.
 */
import { withLuhnDigit } from '../../protocol/pan.js';
import { deriveToken, DEV_TOKEN_KEY } from '../../protocol/token.js';

/** The plain Mir card of the EMV, token and vcard tests. */
export const MIR_PAN = '2200123456789019';
/** The same with its last digit changed: fails the Luhn check. */
export const MIR_PAN_BAD_LUHN = '2200123456789018';
/** A second plain Mir card, one digit off MIR_PAN's body. */
export const MIR_PAN_2 = '2200123456789027';
/** A 19-digit Mir PAN. */
export const MIR_PAN_19 = '2200123456789012341';
/** The test Visa number (refused: not Mir). */
export const VISA_PAN = '4111111111111111';

/** Canary PANs: read with trace logging on, then searched for in every output. */
export const CANARY_PAN = '2200731948620574';
export const CANARY_PAN_19 = '2200731948620571232';

/** The people of the runtime, provisioning and demo stories. */
export const PAN = {
  pensioner: '2200700000000017',
  unknown: '2200700000000025',
  stopped: '2200700000000033',
  student: '2200700000000041',
} as const;

/** The i-th card of a generated registry: a Mir-like PAN (220099…) with a valid Luhn digit. */
export function syntheticPan(i: number): string {
  return withLuhnDigit(`220099${String(i).padStart(9, '0')}`);
}

export function syntheticPsn(i: number): string {
  return String(i % 3).padStart(2, '0');
}

/** The expiry of the virtual cards mirSpec makes. */
export const MIR_EXPIRY = '2029-06';

/** The token a device derives for `pan` with the development key: PAN ‖ expiry (YYYY-MM; mirSpec's by default). */
export const tokenOfPan = (pan: string, expiry = MIR_EXPIRY): string => deriveToken(Buffer.from(pan, 'ascii'), { expiry }, DEV_TOKEN_KEY);

/** A plain Mir virtual card for `pan`. */
export const mirSpec = (pan: string, psn = '01') => ({ kind: 'emv' as const, pan, expiry: MIR_EXPIRY, psn });
