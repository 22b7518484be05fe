import { DEVICE_BUILT_IN_TABLE, type CategoryTable } from '../../protocol/categories.js';
import { MEAL_CATEGORIES, SCHOOL_ROLES, STOP_REASONS, type AnyEntry, type SchoolEntry, type StopEntry, type TransitEntry } from '../../protocol/lists.js';

/**
 * Compact text form of a list entry without its token, as stored in list_<gen>.data
 * (about 30 bytes instead of ~110 of JSON: the store of 1M entries halves).
 * Dates lose their dashes; a benefit category becomes its wire id (for the eight
 * built-in ones their old protocol index, so stores written before decode unchanged),
 * read back through the category table of the rules the device holds.
 *   transit  "202912|0:20240101:20301231,8:20260101:20261231"   (8: a category the rules define)
 *   stop     "0|20261120"
 *   school   "202803|0|2|0|20260901|20270531"   (grade / meal '' when null)
 * Entries are validated before encoding, so decoding trusts its input.
 */
const d8 = (iso: string): string => iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10);
const iso = (d: string): string => `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`;
const ym6 = (ym: string): string => ym.slice(0, 4) + ym.slice(5, 7);
const ym = (d: string): string => `${d.slice(0, 4)}-${d.slice(4, 6)}`;

export function encodeEntry(kind: 'transit' | 'stoplist' | 'school', e: AnyEntry, cats: CategoryTable = DEVICE_BUILT_IN_TABLE): string {
  if (kind === 'transit') {
    const t = e as TransitEntry;
    let s = ym6(t.cardExpiry) + '|';
    for (let i = 0; i < t.benefits.length; i++) {
      const b = t.benefits[i]!;
      s += (i ? ',' : '') + cats.toWire(b.category)! + ':' + d8(b.validFrom) + ':' + d8(b.validTo);
    }
    return s;
  }
  if (kind === 'stoplist') {
    const t = e as StopEntry;
    return `${STOP_REASONS.indexOf(t.reason)}|${d8(t.since)}`;
  }
  const t = e as SchoolEntry;
  return [
    ym6(t.cardExpiry),
    SCHOOL_ROLES.indexOf(t.role),
    t.grade ?? '',
    t.mealCategory === null ? '' : MEAL_CATEGORIES.indexOf(t.mealCategory),
    d8(t.validFrom),
    d8(t.validTo),
  ].join('|');
}

export function decodeEntry(kind: 'transit' | 'stoplist' | 'school', token: string, s: string, cats: CategoryTable = DEVICE_BUILT_IN_TABLE): AnyEntry {
  const f = s.split('|');
  if (kind === 'transit') {
    const benefits = f[1]
      ? f[1].split(',').map((b) => {
          const [c, from, to] = b.split(':');
          return { category: cats.fromWire(Number(c))!, validFrom: iso(from!), validTo: iso(to!) };
        })
      : [];
    return { token, cardExpiry: ym(f[0]!), benefits };
  }
  if (kind === 'stoplist') return { token, reason: STOP_REASONS[Number(f[0])]!, since: iso(f[1]!) };
  return {
    token,
    cardExpiry: ym(f[0]!),
    role: SCHOOL_ROLES[Number(f[1])]!,
    grade: f[2] === '' ? null : Number(f[2]),
    mealCategory: f[3] === '' ? null : MEAL_CATEGORIES[Number(f[3])]!,
    validFrom: iso(f[4]!),
    validTo: iso(f[5]!),
  };
}
