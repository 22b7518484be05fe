import { createHash } from 'node:crypto';
import { BENEFIT_CATEGORIES } from '../../protocol/lists.js';
import type { Measure, MeasuresAnswer, PartnersAnswer, SchoolsAnswer } from '../../protocol/portal-api.js';
import { allPartners } from '../partners.js';
import { publishedSectionFor } from '../published-rules.js';
import type { Db } from '../registry.js';
import { categoryName, partnerWords, ruleWords } from './rule-words.js';

/**
 * The public portal's queries (issue 15 item 4): partners, schools, measures, read from the registry and
 * the published rules. No person, card or token appears in any answer.
 */
export interface PortalApi {
  partners(): PartnersAnswer;
  schools(): SchoolsAnswer;
  measures(): MeasuresAnswer;
}

/** The partner rules a partner device runs with (rules, rules-partner). */
const partnerRules = (db: Db) => publishedSectionFor(db, 'partner', null, 'partners')?.value ?? null;
/** The tariff a bus runs with (rules, rules-bus). */
const busTariff = (db: Db) => publishedSectionFor(db, 'bus', null, 'tariff');

export function portalApi(db: Db): PortalApi {
  return {
    partners() {
      const rules = partnerRules(db);
      const tariff = busTariff(db)?.value ?? null;
      return {
        partners: allPartners(db).map((p) => {
          const cat = rules?.categories[p.category];
          return {
            id: p.id,
            name: p.name,
            category: p.category,
            discountPercent: cat?.discountPercent ?? p.discountPercent,
            byBenefit: Object.entries(cat?.byBenefit ?? {})
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([category, discountPercent]) => ({ category, name: categoryName(category, tariff), discountPercent })),
          };
        }),
      };
    },

    schools() {
      const ids = new Set<string>([
        ...(db.prepare('SELECT DISTINCT school_id FROM enrolments').pluck().all() as string[]),
        ...(db.prepare('SELECT DISTINCT school FROM device_identities WHERE school IS NOT NULL AND revoked_at IS NULL').pluck().all() as string[]),
      ]);
      const own = new Set(
        (db.prepare("SELECT name FROM configs WHERE name LIKE 'rules-school-%'").pluck().all() as string[]).map((n) => n.slice('rules-school-'.length)),
      );
      const devices = db.prepare('SELECT kind, COUNT(*) AS n FROM device_identities WHERE school = ? AND revoked_at IS NULL GROUP BY kind');
      return {
        schools: [...ids]
          .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
          .map((id) => {
            const byKind = new Map((devices.all(id) as { kind: string; n: number }[]).map((r) => [r.kind, r.n]));
            return { id, turnstiles: byKind.get('turnstile') ?? 0, canteens: byKind.get('canteen') ?? 0, ownRules: own.has(id) };
          }),
      };
    },

    measures() {
      const published = busTariff(db);
      const tariff = published?.value ?? null;
      const partners = partnerRules(db);
      const best = new Map<string, number>();
      for (const c of Object.values(partners?.categories ?? {}))
        for (const [cat, pct] of Object.entries(c.byBenefit)) if (pct > c.discountPercent) best.set(cat, Math.max(best.get(cat) ?? 0, pct));
      // built-in categories first, in their historical order, then the operator's, by id
      const builtIn = BENEFIT_CATEGORIES as readonly string[];
      const ids = Object.keys(tariff?.benefits ?? {}).sort((a, b) => {
        const ia = builtIn.indexOf(a);
        const ib = builtIn.indexOf(b);
        if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
        return a.localeCompare(b);
      });
      const measures: Measure[] = ids.map((id) => {
        const pct = best.get(id);
        return {
          category: id,
          name: categoryName(id, tariff),
          transit: ruleWords(tariff!.benefits[id]!),
          partners: pct === undefined ? null : partnerWords(pct),
        };
      });
      return { measures, tariffVersion: published ? published.value.version : null };
    },
  };
}

/** A strong validator for a JSON answer: the SHA-256 of its bytes. */
export function etagOf(json: string): string {
  return `"${createHash('sha256').update(json).digest('base64url').slice(0, 27)}"`;
}
