import { z } from 'zod';

/**
 * The lists a device holds, as plain data. Shared by the device store (which
 * applies them), the sync-server (which publishes them) and the wire codec.
 *
 * Scopes:
 *  - `transit`      region-wide: connected cards with their fare benefits
 *  - `stoplist`     region-wide: cards that must be refused (e.g. a full-fare charge failed)
 *  - `school:<id>`  one school's people: students and staff, grade, meal category
 * Each scope has its own monotonically increasing version.
 *
 * Meal categories and stop reasons are closed sets: the binary codec gives each
 * an id, and a list naming an unknown one is refused before anything changes.
 * Append only; never reorder (the index is the wire id).
 *
 * Benefit categories are data: the operator defines them in the published
 * rules (`tariff.categories`, protocol/categories.ts), and the server assigns
 * each new one a wire id. The eight below are built in with their historical
 * wire ids (their index), so stores and lists written before keep decoding.
 */
export const BENEFIT_CATEGORIES = [
  'pensioner', // пенсионер
  'disabled', // инвалид
  'disabled-child', // ребёнок-инвалид
  'veteran', // ветеран
  'large-family', // многодетная семья
  'schoolchild', // школьник
  'student', // студент
  'low-income', // малоимущие
] as const;
/** A benefit category id: built in (above) or defined by the operator in the rules, e.g. `municipal-employee`. */
export const CategoryId = z.string().regex(/^[a-z][a-z0-9-]{0,47}$/, 'category id: lower-case letters, digits and dashes, starting with a letter');
export type BenefitCategory = string;

export const MEAL_CATEGORIES = [
  'free-breakfast', // бесплатный завтрак (e.g. grades 1-4)
  'free-lunch', // бесплатный обед (e.g. low-income families)
  'free-breakfast-lunch', // both
  'ovz', // ребёнок с ОВЗ (ограниченные возможности здоровья): two free meals a day
] as const;
export type MealCategory = (typeof MEAL_CATEGORIES)[number];

export const STOP_REASONS = [
  'charge-declined', // deferred full-fare charge failed
  'lost',
  'stolen',
  'fraud',
  'operator', // blocked by the operator
] as const;
export type StopReason = (typeof STOP_REASONS)[number];

export const SCHOOL_ROLES = ['student', 'staff'] as const;
export type SchoolRole = (typeof SCHOOL_ROLES)[number];

export const TokenHex = z.string().regex(/^[0-9a-f]{32}$/, 'token must be 32 lower-case hex digits');
export const YearMonth = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'expected YYYY-MM');
export const IsoDate = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'expected YYYY-MM-DD');
export { SchoolId } from './ids.js';
export const ScopeName = z.union([z.literal('transit'), z.literal('stoplist'), z.string().regex(/^school:[A-Za-z0-9_-]{1,32}$/, 'school scope: school:<id>')]);
export type Scope = 'transit' | 'stoplist' | `school:${string}`;

export const Benefit = z.object({
  category: CategoryId,
  validFrom: IsoDate,
  validTo: IsoDate, // inclusive
});
export type Benefit = z.infer<typeof Benefit>;

export const TransitEntry = z.object({
  token: TokenHex,
  cardExpiry: YearMonth, // valid to the end of this month
  benefits: z.array(Benefit).max(8),
});
export type TransitEntry = z.infer<typeof TransitEntry>;

export const SchoolEntry = z.object({
  token: TokenHex,
  cardExpiry: YearMonth,
  role: z.enum(SCHOOL_ROLES),
  grade: z.number().int().min(0).max(12).nullable(),
  mealCategory: z.enum(MEAL_CATEGORIES).nullable(),
  validFrom: IsoDate,
  validTo: IsoDate, // inclusive
});
export type SchoolEntry = z.infer<typeof SchoolEntry>;

export const StopEntry = z.object({
  token: TokenHex,
  reason: z.enum(STOP_REASONS),
  since: IsoDate,
});
export type StopEntry = z.infer<typeof StopEntry>;

export type AnyEntry = TransitEntry | SchoolEntry | StopEntry;

/** A whole list at one version. */
export interface ListSnapshot {
  scope: Scope;
  version: number;
  entries: AnyEntry[];
}

/** Changes from one version to the next (or a later one). */
export interface ListDelta {
  scope: Scope;
  fromVersion: number;
  toVersion: number;
  upserts: AnyEntry[]; // replace the entry with the same token
  removes: string[]; // tokens
}

export function scopeKind(scope: string): 'transit' | 'stoplist' | 'school' {
  if (scope === 'transit' || scope === 'stoplist') return scope;
  if (scope.startsWith('school:')) return 'school';
  throw new Error(`not a scope: ${scope}`);
}

/** zod schema for the entries of a scope. */
export function entrySchemaFor(scope: string): z.ZodType<AnyEntry> {
  const k = scopeKind(scope);
  return k === 'transit' ? TransitEntry : k === 'stoplist' ? StopEntry : SchoolEntry;
}
