import { z } from 'zod';
import { PartnerCategory, RouteId } from './ids.js';
import { BENEFIT_CATEGORIES, CategoryId, IsoDate, MEAL_CATEGORIES, SCHOOL_ROLES } from './lists.js';

/**
 * The rules the server publishes and devices decide by: tariff, school
 * schedules, canteen meals, as zod schemas (docs/config.md describes every
 * field). A device config embeds them; `RulesFile` is the same rules standing
 * alone, which `rc-sync-server config set FILE` takes and publishes.
 */

export const Kopecks = z.number().int().min(0).max(100_000_000);
export const HhMm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'expected HH:MM (00:00..24:00)');
export const Weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
export type Weekday = z.infer<typeof Weekday>;

/** How a benefit category pays. */
const Quota = z
  .object({
    trips: z.number().int().min(1).max(10_000),
    per: z.enum(['month', 'day']),
    onExhausted: z.enum(['full-fare', 'deny']).default('full-fare'),
  })
  .strict();

/** How a benefit category pays; `quota`: N benefit trips per calendar month or day (local time), unlimited when absent. */
export const BenefitRule = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('free'), quota: Quota.optional() }).strict(),
  z.object({ kind: z.literal('percent'), percentOff: z.number().int().min(1).max(100), quota: Quota.optional() }).strict(),
  z.object({ kind: z.literal('fixed'), fareKopecks: Kopecks, quota: Quota.optional() }).strict(),
]);
export type BenefitRule = z.infer<typeof BenefitRule>;

/** A benefit category the operator defines: names for people, and the wire id (assigned by the server when absent). */
export const CategoryDef = z
  .object({
    wireId: z.number().int().min(0).max(254).optional(),
    name: z.object({ ru: z.string().min(1).max(100), en: z.string().min(1).max(100) }).strict(),
  })
  .strict();
export type CategoryDef = z.infer<typeof CategoryDef>;

const builtIn = BENEFIT_CATEGORIES as readonly string[];

export const Tariff = z
  .object({
    /** Tariff version, for the operator's records and the journal. */
    version: z.number().int().min(0).default(1),
    /** Per route: the full fare. */
    routes: z.record(RouteId, z.object({ fullFareKopecks: Kopecks }).strict()).refine((r) => Object.keys(r).length > 0, 'at least one route'),
    /** Benefit categories beyond the eight built in (protocol/lists.ts), by id; a built-in one may be listed to name it. */
    categories: z.record(CategoryId, CategoryDef).default({}),
    /** Per benefit category (built in or defined above); a category not listed here gives no benefit. */
    benefits: z.record(CategoryId, BenefitRule).default({}),
    /** Same card on the same vehicle within this many seconds: allowed, not charged, no quota used. */
    repeatWindowSec: z.number().int().min(0).max(86_400).default(420),
    /** A tap on another route within the window after a paid tap pays the transfer fare. */
    transfer: z
      .object({
        windowSec: z.number().int().min(1).max(86_400),
        fareKopecks: Kopecks,
        maxTransfers: z.number().int().min(1).max(10),
      })
      .strict()
      .optional(),
    /** Fares charged to one card in one local day never exceed this. */
    dailyCapKopecks: Kopecks.optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    const seen = new Map<number, string>();
    for (const [id, d] of Object.entries(t.categories)) {
      const fixed = builtIn.indexOf(id);
      if (d.wireId === undefined) continue;
      if (fixed >= 0 && d.wireId !== fixed)
        ctx.addIssue({ code: 'custom', path: ['categories', id, 'wireId'], message: `built-in category ${id} has wire id ${fixed}` });
      if (fixed < 0 && d.wireId < builtIn.length)
        ctx.addIssue({ code: 'custom', path: ['categories', id, 'wireId'], message: `wire ids below ${builtIn.length} belong to the built-in categories` });
      const other = seen.get(d.wireId);
      if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['categories', id, 'wireId'], message: `wire id ${d.wireId} is also category ${other}'s` });
      seen.set(d.wireId, id);
    }
    for (const id of Object.keys(t.categories))
      if (/^wire-\d/.test(id))
        ctx.addIssue({ code: 'custom', path: ['categories', id], message: 'ids wire-<n> stand for wire ids no rules define; choose another id' });
    for (const id of Object.keys(t.benefits))
      if (!builtIn.includes(id) && !(id in t.categories))
        ctx.addIssue({ code: 'custom', path: ['benefits', id], message: `category ${id} is neither built in nor defined in tariff.categories` });
  });
export type Tariff = z.infer<typeof Tariff>;

export const TimeWindow = z
  .object({
    days: z.array(Weekday).min(1),
    from: HhMm,
    to: HhMm, // exclusive
  })
  .strict()
  .refine((w) => w.from < w.to, { message: '"from" must be before "to"', path: ['to'] });
export type TimeWindow = z.infer<typeof TimeWindow>;

export const SchoolRules = z
  .object({
    /** Windows in which each role may enter (exits are always allowed). A role without windows may never enter. */
    schedules: z.partialRecord(z.enum(SCHOOL_ROLES), z.array(TimeWindow)),
    /** Local dates on which the school is closed (students and staff alike, unless staffOnHolidays). */
    holidays: z.array(IsoDate).default([]),
    staffOnHolidays: z.boolean().default(false),
    /** hard: a second entry (or exit) in a row is refused; soft: allowed and flagged; off: not checked. */
    antiPassback: z.enum(['hard', 'soft', 'off']).default('hard'),
    /** Emergency: the gate is open for everyone; taps are still journaled. */
    freePassage: z.boolean().default(false),
  })
  .strict();
export type SchoolRules = z.infer<typeof SchoolRules>;

export const MealKind = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'meal kind: lower-case word, e.g. breakfast');

export const CanteenRules = z
  .object({
    meals: z.array(z.object({ kind: MealKind, from: HhMm, to: HhMm }).strict()).min(1),
    /** Which meal kinds each meal category gets free, once per kind per day. */
    categories: z.partialRecord(z.enum(MEAL_CATEGORIES), z.array(MealKind)).default({
      'free-breakfast': ['breakfast'],
      'free-lunch': ['lunch'],
      'free-breakfast-lunch': ['breakfast', 'lunch'],
      ovz: ['breakfast', 'lunch'],
    }),
    /**
     * Free meals by grade, for students whatever their meal category (the law: grades 1–4 get one free hot meal a day):
     * the meal kinds it covers, at most `perDay` of them free a day (default: one of each kind).
     */
    grades: z
      .array(
        z
          .object({
            from: z.number().int().min(0).max(12),
            to: z.number().int().min(0).max(12),
            meals: z.array(MealKind).min(1),
            perDay: z.number().int().min(1).max(10).optional(),
          })
          .strict()
          .refine((g) => g.from <= g.to, { message: '"from" must not be above "to"', path: ['to'] }),
      )
      .default([]),
    /** Price of a paid meal per kind; without it a second meal (or a meal without entitlement) is refused. */
    paidPriceKopecks: z.record(MealKind, Kopecks).optional(),
    /** A second meal of a kind already taken free today: `sell` it at its price (when it has one) or `refuse` it (the school's rule). */
    secondFreeMeal: z.enum(['sell', 'refuse']).default('sell'),
    holidays: z.array(IsoDate).default([]),
  })
  .strict();
export type CanteenRules = z.infer<typeof CanteenRules>;

const Percent = z.number().int().min(0).max(100);

/**
 * Partners' resident discounts (issue 14 item 3), by partner category: `discountPercent` for any
 * resident, and optionally a different one per benefit category the card holds (the highest applies).
 */
export const PartnerRules = z
  .object({
    categories: z
      .record(PartnerCategory, z.object({ discountPercent: Percent, byBenefit: z.record(CategoryId, Percent).default({}) }).strict())
      .refine((c) => Object.keys(c).length > 0, 'at least one partner category'),
  })
  .strict();
export type PartnerRules = z.infer<typeof PartnerRules>;

/** The rules alone (a file the server publishes): any of tariff, school, canteen, partners. */
export const RulesFile = z
  .object({
    schema: z.literal(1),
    tariff: Tariff.optional(),
    school: SchoolRules.optional(),
    canteen: CanteenRules.optional(),
    partners: PartnerRules.optional(),
  })
  .strict();
export type RulesFile = z.infer<typeof RulesFile>;

const tzCache = new Map<string, boolean>();
export function isTimeZone(tz: string): boolean {
  let ok = tzCache.get(tz);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      ok = true;
    } catch {
      ok = false;
    }
    tzCache.set(tz, ok);
  }
  return ok;
}
