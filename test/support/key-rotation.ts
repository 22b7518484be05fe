import type { ListSnapshot, SchoolEntry, TransitEntry } from '../../protocol/lists.js';
import { deriveToken, type TokenKey } from '../../protocol/token.js';

/**
 * The two-version card fixture of the key-rotation tests (docs/token-key.md, Rotation), one for the soft key
 * (test/unit/token-rotation.test.ts) and the SoftHSM one (test/integration/token-hsm-provision.test.ts):
 * mid-migration the lists hold OLD under its v1 token (not yet re-imported), NEW under its v2 token, NONE
 * under neither, and STOPPED on the stop-list under its v1 token. Synthetic, Luhn-valid PANs.
 */
export const ROTATION_PAN = {
  old: '2200700000000058',
  new: '2200700000000066',
  none: '2200700000000074',
  stopped: '2200700000000082',
} as const;

/** A card's token under one key version, whichever its scheme, as the device derives it from the virtual card (`mirSpec(pan)`: expiry 2029-06, PSN 01). */
export const rotationToken = (pan: string, key: TokenKey): string => deriveToken(Buffer.from(pan, 'ascii'), { expiry: '2029-06', psn: '01' }, key);

export const pensionerEntry = (token: string): TransitEntry => ({
  token,
  cardExpiry: '2029-06',
  benefits: [{ category: 'pensioner', validFrom: '2020-01-01', validTo: '2030-12-31' }],
});

export const studentEntry = (token: string): SchoolEntry => ({
  token,
  cardExpiry: '2029-06',
  role: 'student',
  grade: 5,
  mealCategory: null,
  validFrom: '2026-09-01',
  validTo: '2027-05-31',
});

export interface RotationFixture {
  /** The token that decides each card's tap (and is journaled): as listed, else under the newest version. */
  token: { old: string; new: string; none: string; stopped: string };
  transit: ListSnapshot;
  stoplist: ListSnapshot;
  /** School 7's students: OLD under v1, NEW under v2. */
  school: ListSnapshot;
}

export function rotationFixture(v1: TokenKey, v2: TokenKey): RotationFixture {
  const token = {
    old: rotationToken(ROTATION_PAN.old, v1),
    new: rotationToken(ROTATION_PAN.new, v2),
    none: rotationToken(ROTATION_PAN.none, v2),
    stopped: rotationToken(ROTATION_PAN.stopped, v1),
  };
  return {
    token,
    transit: { scope: 'transit', version: 2, entries: [pensionerEntry(token.old), pensionerEntry(token.new)] },
    stoplist: { scope: 'stoplist', version: 2, entries: [{ token: token.stopped, reason: 'lost', since: '2026-01-01' }] },
    school: { scope: 'school:7', version: 2, entries: [studentEntry(token.old), studentEntry(token.new)] },
  };
}
