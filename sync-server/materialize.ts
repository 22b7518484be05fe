import type { MealCategory, SchoolEntry, StopEntry, TransitEntry, BenefitCategory, StopReason, SchoolRole } from '../protocol/lists.js';
import { encodeRecords } from '../protocol/wire/codec.js';
import type { CategoryTable } from '../protocol/categories.js';
import { publishedCategoryTable } from './categories.js';
import type { Db } from './registry.js';

/**
 * Turn the registry's source tables into list entries, one token at a time:
 *  - transit:     every connected card (one per person) with the person's benefits
 *  - school:<id>: every person enrolled in the school who has a card
 *  - stoplist:    the stop-list rows
 * Returns the encoded records, or null when the token has no entry in the scope.
 */
export type Dirty = Map<string, Set<string>>; // scope -> tokens

/** Marker set: every token of the scope may have changed (recompute it in one ordered pass). */
export const ALL_TOKENS: ReadonlySet<string> = new Set<string>();

export function markAll(d: Dirty, scope: string): void {
  d.set(scope, ALL_TOKENS as Set<string>);
}

export function markDirty(d: Dirty, scope: string, token: string): void {
  let s = d.get(scope);
  if (s === ALL_TOKENS) return;
  if (!s) d.set(scope, (s = new Set()));
  s.add(token);
}

interface CardRow {
  person_id: string;
  expiry: string;
}
interface BenefitRow {
  category: string;
  valid_from: string;
  valid_to: string;
}
interface EnrolRow {
  role: string;
  grade: number | null;
  meal_category: string | null;
  valid_from: string;
  valid_to: string;
}

/** Benefits in a stable order (as the per-token query returns them), at most 8 kept. */
function byBenefit(a: { category: string; validFrom: string; validTo: string }, b: { category: string; validFrom: string; validTo: string }): number {
  return a.category < b.category
    ? -1
    : a.category > b.category
      ? 1
      : a.validFrom < b.validFrom
        ? -1
        : a.validFrom > b.validFrom
          ? 1
          : a.validTo < b.validTo
            ? -1
            : a.validTo > b.validTo
              ? 1
              : 0;
}

export class Materializer {
  private readonly card;
  private readonly benefits;
  private readonly enrol;
  private readonly stop;
  private readonly page;
  private cats: CategoryTable | null = null;
  constructor(private readonly db: Db) {
    this.card = db.prepare('SELECT person_id, expiry FROM cards WHERE token = ?');
    this.benefits = db.prepare('SELECT category, valid_from, valid_to FROM benefits WHERE person_id = ? ORDER BY category, valid_from, valid_to');
    this.enrol = db.prepare(
      'SELECT role, grade, meal_category, valid_from, valid_to FROM enrolments WHERE person_id = ? AND school_id = ? ORDER BY valid_to DESC LIMIT 1',
    );
    this.stop = db.prepare('SELECT reason, since FROM stoplist WHERE token = ?');
    this.page = {
      stop: db.prepare('SELECT token, reason, since FROM stoplist WHERE token > ? ORDER BY token LIMIT ?'),
      // the page's cards (token index order), then their benefits (sorted per card in scanPage)
      transit: db.prepare(
        'SELECT c.token AS token, c.expiry AS expiry, b.category AS category, b.valid_from AS valid_from, b.valid_to AS valid_to FROM (SELECT token, person_id, expiry FROM cards WHERE token > ? ORDER BY token LIMIT ?) c LEFT JOIN benefits b ON b.person_id = c.person_id ORDER BY c.token',
      ),
      school: db
        .prepare(
          'SELECT DISTINCT c.token FROM enrolments e JOIN cards c ON c.person_id = e.person_id WHERE e.school_id = ? AND c.token > ? ORDER BY c.token LIMIT ?',
        )
        .pluck(),
    };
  }

  /** Wire ids of the benefit categories, from the published rules (a category they do not define is left out of the lists). */
  categories(): CategoryTable {
    return (this.cats ??= publishedCategoryTable(this.db));
  }

  /** The published rules changed (Publisher.setConfig). */
  rulesChanged(): void {
    this.cats = null;
  }

  entry(scope: string, token: string, cats: CategoryTable = this.categories()): TransitEntry | SchoolEntry | StopEntry | null {
    if (scope === 'stoplist') {
      const s = this.stop.get(token) as { reason: string; since: string } | undefined;
      return s ? { token, reason: s.reason as StopReason, since: s.since } : null;
    }
    const c = this.card.get(token) as CardRow | undefined;
    if (!c) return null;
    if (scope === 'transit') {
      const bs = this.benefits.all(c.person_id) as BenefitRow[];
      return {
        token,
        cardExpiry: c.expiry,
        benefits: bs
          .filter((b) => cats.toWire(b.category) !== undefined)
          .slice(0, 8)
          .map((b) => ({ category: b.category as BenefitCategory, validFrom: b.valid_from, validTo: b.valid_to })),
      };
    }
    const school = scope.slice('school:'.length);
    const e = this.enrol.get(c.person_id, school) as EnrolRow | undefined;
    if (!e) return null;
    return {
      token,
      cardExpiry: c.expiry,
      role: e.role as SchoolRole,
      grade: e.grade,
      mealCategory: e.meal_category as MealCategory | null,
      validFrom: e.valid_from,
      validTo: e.valid_to,
    };
  }

  /**
   * Every entry of a scope in token order, as encoded records (for a full
   * recomputation when an import touched many tokens).
   */
  *scan(scope: string): Generator<{ token: string; rec: Buffer }> {
    if (scope === 'stoplist') {
      for (const r of this.db.prepare('SELECT token, reason, since FROM stoplist ORDER BY token').iterate() as Iterable<{
        token: string;
        reason: string;
        since: string;
      }>) {
        yield { token: r.token, rec: encodeRecords(scope, [{ token: r.token, reason: r.reason as StopReason, since: r.since }]) };
      }
      return;
    }
    if (scope === 'transit') {
      const cats = this.categories();
      let cur: TransitEntry | null = null;
      const rows = this.db
        // ordered by token only (the token index gives that order without a sort); benefits sorted per card below
        .prepare(
          'SELECT c.token AS token, c.expiry AS expiry, b.category AS category, b.valid_from AS valid_from, b.valid_to AS valid_to FROM cards c LEFT JOIN benefits b ON b.person_id = c.person_id ORDER BY c.token',
        )
        .iterate() as Iterable<{ token: string; expiry: string; category: string | null; valid_from: string; valid_to: string }>;
      const done = (e: TransitEntry) => {
        if (e.benefits.length > 1) e.benefits = e.benefits.sort(byBenefit).slice(0, 8);
        return { token: e.token, rec: encodeRecords(scope, [e], [], cats) };
      };
      for (const r of rows) {
        if (!cur || cur.token !== r.token) {
          if (cur) yield done(cur);
          cur = { token: r.token, cardExpiry: r.expiry, benefits: [] };
        }
        if (r.category !== null && cats.toWire(r.category) !== undefined)
          cur.benefits.push({ category: r.category as BenefitCategory, validFrom: r.valid_from, validTo: r.valid_to });
      }
      if (cur) yield done(cur);
      return;
    }
    const tokens = this.db
      .prepare('SELECT DISTINCT c.token FROM enrolments e JOIN cards c ON c.person_id = e.person_id WHERE e.school_id = ? ORDER BY c.token')
      .pluck()
      .all(scope.slice('school:'.length)) as string[];
    for (const token of tokens) {
      const rec = this.records(scope, token);
      if (rec) yield { token, rec };
    }
  }

  /**
   * One page of `scan`: the entries of the scope with a token after `after` (null: from the start), at most
   * `limit` tokens, in token order. Each page is one short query, so a caller can yield to the event loop
   * between pages (an open iterator would keep the connection busy for every other statement).
   */
  scanPage(scope: string, after: string | null, limit: number): { token: string; rec: Buffer }[] {
    const from = after ?? '';
    const out: { token: string; rec: Buffer }[] = [];
    if (scope === 'stoplist') {
      const rows = this.page.stop.all(from, limit) as { token: string; reason: string; since: string }[];
      for (const r of rows) out.push({ token: r.token, rec: encodeRecords(scope, [{ token: r.token, reason: r.reason as StopReason, since: r.since }]) });
      return out;
    }
    if (scope === 'transit') {
      const cats = this.categories();
      const rows = this.page.transit.all(from, limit) as { token: string; expiry: string; category: string | null; valid_from: string; valid_to: string }[];
      let cur: TransitEntry | null = null;
      const done = (e: TransitEntry) => {
        if (e.benefits.length > 1) e.benefits = e.benefits.sort(byBenefit).slice(0, 8);
        out.push({ token: e.token, rec: encodeRecords(scope, [e], [], cats) });
      };
      for (const r of rows) {
        if (!cur || cur.token !== r.token) {
          if (cur) done(cur);
          cur = { token: r.token, cardExpiry: r.expiry, benefits: [] };
        }
        if (r.category !== null && cats.toWire(r.category) !== undefined)
          cur.benefits.push({ category: r.category as BenefitCategory, validFrom: r.valid_from, validTo: r.valid_to });
      }
      if (cur) done(cur);
      return out;
    }
    const tokens = this.page.school.all(scope.slice('school:'.length), from, limit) as string[];
    for (const token of tokens) {
      const rec = this.records(scope, token);
      if (rec) out.push({ token, rec });
    }
    return out;
  }

  records(scope: string, token: string): Buffer | null {
    const cats = this.categories();
    const e = this.entry(scope, token, cats);
    return e ? encodeRecords(scope, [e], [], cats) : null;
  }
}
