import type { CardScheme } from '../reader/types.js';

/** Registered application provider identifiers (first 5 bytes of an AID) of the schemes we name. */
export const RID_SCHEMES: Readonly<Record<string, CardScheme>> = {
  A000000003: 'visa',
  A000000004: 'mastercard',
  A000000042: 'cb',
  A000000277: 'interac',
  A000000025: 'amex',
  A000000065: 'jcb',
  A000000333: 'unionpay',
  A000000658: 'mir',
};

export const MIR_RID = 'A000000658';

/** Mir AIDs tried one by one when the card has no PPSE, most common first. */
export const KNOWN_MIR_AIDS: readonly string[] = ['A0000006581010', 'A0000006582010', 'A0000006581011', 'A0000006581099'];

/** The scheme of an AID (hex, any case) by its RID; 'unknown' when not listed. */
export function schemeOfAid(aid: string): CardScheme {
  return RID_SCHEMES[aid.slice(0, 10).toUpperCase()] ?? 'unknown';
}
