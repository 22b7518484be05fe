import { z } from 'zod';

/**
 * The public portal's JSON (issue 15 item 4): what anyone may read without signing in, served on the public
 * listener (and on the operator one when there is no public listener). The answers carry an ETag and
 * Cache-Control, so a browser or a proxy asks again cheaply. Nothing here is about a person.
 *
 *   GET /v1/public/partners   partners with the discount they give residents
 *   GET /v1/public/schools    the schools in the system: turnstiles, canteens
 *   GET /v1/public/measures   benefit categories from the published rules, and what each gives, in words
 *
 * The connected banks (GET /v1/public/banks) are in protocol/bank-api.ts.
 */

/** A text in Russian and English. */
export const Words = z.object({ ru: z.string(), en: z.string() });
export type Words = z.infer<typeof Words>;

export const PortalPartner = z.object({
  id: z.string(),
  name: z.string(),
  /** The partner's category (shop, museum, …): the published partner rules give the discount by it. */
  category: z.string(),
  /** The discount for any resident, percent: the published rules' one for the category, else the one agreed at import. */
  discountPercent: z.number().int(),
  /** A higher discount for holders of a benefit category (the published partner rules). */
  byBenefit: z.array(z.object({ category: z.string(), name: Words, discountPercent: z.number().int() })),
});
export type PortalPartner = z.infer<typeof PortalPartner>;
export const PartnersAnswer = z.object({ partners: z.array(PortalPartner) });
export type PartnersAnswer = z.infer<typeof PartnersAnswer>;

export const PortalSchool = z.object({
  id: z.string(),
  /** Enrolled turnstiles and canteen terminals (revoked ones not counted). */
  turnstiles: z.number().int(),
  canteens: z.number().int(),
  /** The school has its own published rules (rules-school-<id>): its own hours or holidays. */
  ownRules: z.boolean(),
});
export type PortalSchool = z.infer<typeof PortalSchool>;
export const SchoolsAnswer = z.object({ schools: z.array(PortalSchool) });
export type SchoolsAnswer = z.infer<typeof SchoolsAnswer>;

export const Measure = z.object({
  /** The category id (built in, e.g. `pensioner`, or the operator's, e.g. `municipal-employee`). */
  category: z.string(),
  name: Words,
  /** What it gives on the bus, in words derived from the fare rule (sync-server/portal/rule-words.ts). */
  transit: Words,
  /** What it gives at partners, when their published rules give holders of this category more. */
  partners: Words.nullable(),
});
export type Measure = z.infer<typeof Measure>;
export const MeasuresAnswer = z.object({
  measures: z.array(Measure),
  /** The published tariff version the words come from; null when no tariff is published. */
  tariffVersion: z.number().int().nullable(),
});
export type MeasuresAnswer = z.infer<typeof MeasuresAnswer>;
