import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import { type ImportKind, type ImportReport, type RowError } from '../protocol/api.js';
import { BENEFIT_CATEGORIES, CategoryId, IsoDate, MEAL_CATEGORIES, SCHOOL_ROLES, STOP_REASONS, SchoolId, TokenHex, YearMonth } from '../protocol/lists.js';
import type { CardTokenData, TokenKey } from '../protocol/token.js';
import type { TokenDeriver } from '../protocol/token-hsm.js';
import { luhnOk } from '../protocol/pan.js';
import { RouteId } from '../protocol/ids.js';
import { bulkTokenizer } from './tokenize.js';
import { csvRecords, type CsvLimits, type CsvSource } from './csv.js';
import { ALL_TOKENS, markAll, markDirty, type Dirty } from './materialize.js';
import { PARTNER_COLUMNS, PartnerRow, applyPartners, partnerParsed, type PartnerParsed } from './import-partners.js';
import type { Db } from './registry.js';
import { GUARDIAN_COLUMNS, GuardianRow, upsertGuardians } from './notify/guardians.js';

/**
 * CSV imports (UTF-8, header row, any column order):
 *  cards:      person_id,pan,expiry[,psn]      PAN ‖ expiry tokenised here (psn used only under a pre-migration pan-psn key), never kept; one card per person
 *  benefits:   person_id,category,valid_from,valid_to        replaces the benefits of each person named
 *  enrolments: person_id,school_id,role,grade,meal_category,valid_from,valid_to   replaces each person's enrolments
 *  stoplist:   pan with expiry (and psn under a pan-psn key) or token, reason
 *  routes:     carrier_id,carrier_name,inn,route_id,valid_from   the route is run by the carrier from that date
 *              (until a later row for the route); the carrier's name and INN are updated. Publishes no list.
 *  partners:   partner_id,partner_name,category,discount   (sync-server/import-partners.ts) Publishes no list.
 *  guardians:  person_id,guardian_id,child_name,channel,address,consent,events[,secret][,quiet_hours]   (notify/guardians.ts) replaces
 *              each child's guardians. Publishes no list.
 * A file with any bad row is rejected whole (server.import-invalid, with a report)
 * unless skipInvalid; then the good rows are applied and the bad ones reported.
 */
// the kinds and the report are part of the HTTP API (protocol/api.ts)
export { type ImportKind, type ImportReport };

const PersonId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'person id: 1-64 of A-Z a-z 0-9 _ . -');
const Pan = z
  .string()
  .regex(/^\d{12,19}$/, 'card number must be 12-19 digits')
  .refine(luhnOk, 'card number fails the Luhn check');
const Psn = z.string().regex(/^([0-9A-Fa-f]{2})?$/, 'psn must be empty or 2 hex digits');
const validRange = (r: { valid_from: string; valid_to: string }) => r.valid_from <= r.valid_to;

/** A Russian taxpayer number (ИНН): 10 digits (an organisation) or 12 (a sole trader), with its check digits. */
export function innOk(inn: string): boolean {
  if (!/^(\d{10}|\d{12})$/.test(inn)) return false;
  const d = [...inn].map(Number);
  const check = (w: number[]) => (w.reduce((s, x, i) => s + x * d[i]!, 0) % 11) % 10;
  if (d.length === 10) return check([2, 4, 10, 3, 5, 9, 4, 6, 8]) === d[9];
  return check([7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) === d[10] && check([3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) === d[11];
}
export const CarrierId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'carrier id: 1-64 of A-Z a-z 0-9 _ . -');

const rowSchemas = {
  cards: z.object({ person_id: PersonId, pan: Pan, psn: Psn.default(''), expiry: YearMonth }),
  benefits: z
    .object({ person_id: PersonId, category: CategoryId, valid_from: IsoDate, valid_to: IsoDate })
    .refine(validRange, { message: 'valid_to is before valid_from', path: ['valid_to'] }),
  enrolments: z
    .object({
      person_id: PersonId,
      school_id: SchoolId,
      role: z.enum(SCHOOL_ROLES),
      grade: z.union([
        z.literal('').transform(() => null),
        z
          .string()
          .regex(/^(\d|1[0-2])$/, 'grade 0-12 or empty')
          .transform(Number),
      ]),
      meal_category: z.union([z.literal('').transform(() => null), z.enum(MEAL_CATEGORIES)]),
      valid_from: IsoDate,
      valid_to: IsoDate,
    })
    .refine(validRange, { message: 'valid_to is before valid_from', path: ['valid_to'] }),
  stoplist: z
    .object({ pan: Pan.optional(), psn: Psn.optional(), expiry: YearMonth.optional(), token: TokenHex.optional(), reason: z.enum(STOP_REASONS) })
    .refine((r) => (r.pan === undefined) !== (r.token === undefined), { message: 'give exactly one of pan or token', path: ['token'] }),
  routes: z.object({
    carrier_id: CarrierId,
    carrier_name: z.string().min(1, 'carrier name is empty').max(200),
    inn: z.string().refine(innOk, 'INN must be 10 or 12 digits with valid check digits'),
    route_id: RouteId,
    valid_from: IsoDate,
  }),
  partners: PartnerRow,
  guardians: GuardianRow,
};

const REQUIRED: Record<ImportKind, string[][]> = {
  cards: [['person_id', 'pan', 'expiry']],
  benefits: [['person_id', 'category', 'valid_from', 'valid_to']],
  enrolments: [['person_id', 'school_id', 'role', 'grade', 'meal_category', 'valid_from', 'valid_to']],
  stoplist: [
    ['pan', 'reason'],
    ['token', 'reason'],
  ],
  routes: [['carrier_id', 'carrier_name', 'inn', 'route_id', 'valid_from']],
  partners: [PARTNER_COLUMNS],
  guardians: [GUARDIAN_COLUMNS],
};

export type Parsed =
  | { kind: 'cards'; person: string; token: string; keyVersion: number; expiry: string }
  | { kind: 'benefits'; person: string; category: string; from: string; to: string }
  | { kind: 'enrolments'; person: string; school: string; role: string; grade: number | null; meal: string | null; from: string; to: string }
  | { kind: 'stoplist'; token: string; reason: string }
  | { kind: 'routes'; carrier: string; name: string; inn: string; route: string; from: string }
  | PartnerParsed
  | { kind: 'guardians'; person: string; row: GuardianRow };

function tokenOf(pan: string, expiry: string | undefined, psn: string | undefined, derive: (pan: Uint8Array, card: CardTokenData) => string): string {
  const b = Buffer.from(pan, 'ascii');
  try {
    return derive(b, { expiry: expiry ?? null, psn: psn ? psn.toUpperCase() : null });
  } finally {
    b.fill(0);
  }
}

export interface ImportOptions {
  skipInvalid: boolean;
  /** The key in memory (the fast bulk HMAC) or a deriver (the key in the server's token). */
  tokenKey: TokenKey | TokenDeriver;
  today: string; // YYYY-MM-DD, for stop-list "since"
  onRows?: (rows: number) => void;
  /** Size limits of the file (defaults: DEFAULT_CSV_LIMITS). */
  limits?: CsvLimits;
  /** Benefit categories the published rules define (sync-server/categories.ts `publishedCategoryIds`; default: the built-in ones); another is a row error. */
  categories?: readonly string[];
}

/** Counts and the first 100 row errors of a file being read. */
export interface ParseTally {
  rows: number;
  rejected: number;
  errors: RowError[];
}

/** Yield to the event loop (timers, sockets) at least this often while a file is parsed. */
const SLICE_MS = 8;
export const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The valid rows of a file, validated and tokenised as they stream in; bad rows are counted in `tally`
 * (the first 100 with line, column and reason). Gives the event loop a turn every few milliseconds, so
 * a million-row file does not hold the server's timers and sockets while it is read.
 */
export async function* validRows(kind: ImportKind, source: CsvSource, opts: ImportOptions, tally: ParseTally): AsyncGenerator<Parsed> {
  const schema = rowSchemas[kind] as z.ZodType<Record<string, unknown>>;
  const errors = tally.errors;
  let header: string[] | null = null;
  const tk = opts.tokenKey;
  const derive = 'derive' in tk ? (pan: Uint8Array, card: CardTokenData) => tk.derive(pan, card) : bulkTokenizer(tk);
  const categories = new Set<string>(opts.categories ?? BENEFIT_CATEGORIES);
  let slice = performance.now();
  for await (const { line: lineNo, cells } of csvRecords(source, opts.limits)) {
    if (performance.now() - slice > SLICE_MS) {
      await yieldToLoop();
      slice = performance.now();
    }
    if (cells.every((c) => c.trim() === '')) continue;
    if (!header) {
      header = cells.map((h) => h.trim().toLowerCase());
      const ok = REQUIRED[kind].some((set) => set.every((c) => header!.includes(c)));
      if (!ok) {
        throw new RcError(ErrorCode.ServerImportInvalid, `${kind}: header must name the columns ${REQUIRED[kind].map((s) => s.join(',')).join(' or ')}`, {
          report: { kind, rows: 0, applied: 0, rejected: 0, errors: [{ line: 1, column: '', reason: 'missing columns' }] },
        });
      }
      continue;
    }
    const total = ++tally.rows;
    if (total % 50_000 === 0) opts.onRows?.(total);
    const obj: Record<string, string> = {};
    for (let i = 0; i < header.length; i++) {
      const v = cells[i]?.trim();
      if (
        v !== undefined &&
        !(v === '' && (header[i] === 'pan' || header[i] === 'token' || header[i] === 'psn' || header[i] === 'expiry') && kind === 'stoplist')
      )
        obj[header[i]!] = v;
    }
    const r = schema.safeParse(obj);
    if (!r.success) {
      tally.rejected++;
      if (errors.length < 100) {
        const iss = r.error.issues[0]!;
        errors.push({ line: lineNo, column: String(iss.path[0] ?? ''), reason: iss.message });
      }
      continue;
    }
    const d = r.data;
    if (kind === 'benefits' && !categories.has(d.category as string)) {
      tally.rejected++;
      if (errors.length < 100)
        errors.push({ line: lineNo, column: 'category', reason: `category ${String(d.category)} is not defined in the published rules` });
      continue;
    }
    switch (kind) {
      case 'cards':
        yield {
          kind,
          person: d.person_id as string,
          token: tokenOf(d.pan as string, d.expiry as string, d.psn as string, derive), // PAN ‖ the expiry column (PAN ‖ psn under a pan-psn key version)
          keyVersion: opts.tokenKey.version,
          expiry: d.expiry as string,
        };
        break;
      case 'benefits':
        yield { kind, person: d.person_id as string, category: d.category as string, from: d.valid_from as string, to: d.valid_to as string };
        break;
      case 'enrolments':
        yield {
          kind,
          person: d.person_id as string,
          school: d.school_id as string,
          role: d.role as string,
          grade: d.grade as number | null,
          meal: d.meal_category as string | null,
          from: d.valid_from as string,
          to: d.valid_to as string,
        };
        break;
      case 'stoplist': {
        let token = d.token as string | undefined;
        if (token === undefined) {
          try {
            token = tokenOf(d.pan as string, d.expiry as string | undefined, d.psn as string | undefined, derive);
          } catch (e) {
            // a card number without its expiry (the token needs it): a row error, never a token
            if (!(e instanceof RcError)) throw e;
            tally.rejected++;
            if (errors.length < 100) errors.push({ line: lineNo, column: 'expiry', reason: 'a card number needs its expiry (YYYY-MM)' });
            continue;
          }
        }
        yield { kind, token, reason: d.reason as string };
        break;
      }
      case 'routes':
        yield {
          kind,
          carrier: d.carrier_id as string,
          name: d.carrier_name as string,
          inn: d.inn as string,
          route: d.route_id as string,
          from: d.valid_from as string,
        };
        break;
      case 'partners':
        yield partnerParsed(d);
        break;
      case 'guardians':
        yield { kind, person: d.person_id as string, row: d as GuardianRow };
        break;
    }
  }
  opts.onRows?.(tally.rows);
}

/** The report of a file read whole; throws server.import-invalid when a row is bad and `skipInvalid` is not set. */
export function importReport(kind: ImportKind, tally: ParseTally, applied: number, skipInvalid: boolean): ImportReport {
  const report: ImportReport = { kind, rows: tally.rows, applied: 0, rejected: tally.rejected, errors: tally.errors };
  if (tally.rejected > 0 && !skipInvalid) {
    throw new RcError(ErrorCode.ServerImportInvalid, `${kind}: ${tally.rejected} of ${tally.rows} rows are invalid; nothing imported`, { report });
  }
  report.applied = applied;
  return report;
}

/** Parse and validate every row; nothing is written. `source` is the file's text in chunks of any size. */
export async function parseImport(kind: ImportKind, source: CsvSource, opts: ImportOptions): Promise<{ rows: Parsed[]; report: ImportReport }> {
  const tally: ParseTally = { rows: 0, rejected: 0, errors: [] };
  const rows: Parsed[] = [];
  for await (const r of validRows(kind, source, opts, tally)) rows.push(r);
  return { rows, report: importReport(kind, tally, rows.length, opts.skipInvalid) };
}

/**
 * Benefits and enrolments replace what a person had: the first row of each person in the file clears
 * the person's rows. `first` marks it (kept with a staged row, so a resumed import clears exactly once).
 */
export type Staged = Parsed & { first?: boolean };

/** Mark the first row of each person (benefits, enrolments), in file order. */
export function firstOfPerson(seen: Set<string>): (r: Parsed) => Staged {
  return (r) =>
    r.kind === 'benefits' || r.kind === 'enrolments' || r.kind === 'guardians' ? { ...r, first: seen.has(r.person) ? false : (seen.add(r.person), true) } : r;
}

/** What applying rows of one import needs across its chunks: the statements and the scopes it made dirty. */
export interface ApplyContext {
  kind: ImportKind;
  dirty: Dirty;
  apply(rows: readonly Staged[]): void;
}

/**
 * Applying an import's rows, in one transaction (`applyImport`) or chunk by chunk (import-stage.ts); the
 * caller runs `apply` inside a transaction. `total`: the import's valid rows (a big file recomputes whole scopes).
 */
export function applyContext(db: Db, kind: ImportKind, total: number, today: string): ApplyContext {
  const dirty: Dirty = new Map();
  const now = new Date().toISOString();
  const tokenOfPerson = db.prepare('SELECT token FROM cards WHERE person_id = ?').pluck();
  const personOfToken = db.prepare('SELECT person_id FROM cards WHERE token = ?').pluck();
  const schoolsOf = db.prepare('SELECT DISTINCT school_id FROM enrolments WHERE person_id = ?').pluck();
  const anyEnrolment = db.prepare('SELECT 1 FROM enrolments LIMIT 1').get() !== undefined;
  const markPerson = (person: string, token: string) => {
    markDirty(dirty, 'transit', token);
    if (anyEnrolment) for (const s of schoolsOf.all(person) as string[]) markDirty(dirty, `school:${s}`, token);
  };
  // a big file: recompute whole scopes instead of tracking each token
  if (total > 20_000 && kind !== 'enrolments' && kind !== 'routes' && kind !== 'partners' && kind !== 'guardians')
    markAll(dirty, kind === 'stoplist' ? 'stoplist' : 'transit');
  let apply: (rows: readonly Staged[]) => void;
  if (kind === 'cards') {
    const delByToken = db.prepare('DELETE FROM cards WHERE token = ? AND person_id <> ?');
    // a big file with the whole scope marked and no school lists: no per-token bookkeeping needed
    const bulk = dirty.get('transit') === ALL_TOKENS && !anyEnrolment;
    const upsert = db.prepare(
      'INSERT INTO cards(person_id, token, key_version, expiry, updated_at) VALUES (?,?,?,?,?) ON CONFLICT(person_id) DO UPDATE SET token=excluded.token, key_version=excluded.key_version, expiry=excluded.expiry, updated_at=excluded.updated_at',
    );
    apply = (rows) => {
      for (const r of rows) {
        if (r.kind !== 'cards') continue;
        if (bulk) {
          delByToken.run(r.token, r.person); // the card moved from another person
          upsert.run(r.person, r.token, r.keyVersion, r.expiry, now);
          continue;
        }
        const old = tokenOfPerson.get(r.person) as string | undefined;
        if (old) markPerson(r.person, old);
        const other = personOfToken.get(r.token) as string | undefined;
        if (other !== undefined && other !== r.person) {
          markPerson(other, r.token);
          delByToken.run(r.token, r.person);
        }
        upsert.run(r.person, r.token, r.keyVersion, r.expiry, now);
        markPerson(r.person, r.token);
      }
    };
  } else if (kind === 'benefits') {
    const del = db.prepare('DELETE FROM benefits WHERE person_id = ?');
    const ins = db.prepare('INSERT INTO benefits(person_id, category, valid_from, valid_to) VALUES (?,?,?,?)');
    apply = (rows) => {
      for (const r of rows) {
        if (r.kind !== 'benefits') continue;
        if (r.first) {
          del.run(r.person);
          const t = tokenOfPerson.get(r.person) as string | undefined;
          if (t) markDirty(dirty, 'transit', t);
        }
        ins.run(r.person, r.category, r.from, r.to);
      }
    };
  } else if (kind === 'enrolments') {
    const del = db.prepare('DELETE FROM enrolments WHERE person_id = ?');
    const ins = db.prepare('INSERT INTO enrolments(person_id, school_id, role, grade, meal_category, valid_from, valid_to) VALUES (?,?,?,?,?,?,?)');
    apply = (rows) => {
      for (const r of rows) {
        if (r.kind !== 'enrolments') continue;
        const t = tokenOfPerson.get(r.person) as string | undefined;
        if (r.first) {
          if (t) for (const s of schoolsOf.all(r.person) as string[]) markDirty(dirty, `school:${s}`, t);
          del.run(r.person);
        }
        ins.run(r.person, r.school, r.role, r.grade, r.meal, r.from, r.to);
        if (t) markDirty(dirty, `school:${r.school}`, t);
      }
    };
  } else if (kind === 'routes') {
    // carriers and routes feed the reports only: no list changes
    const carrier = db.prepare(
      'INSERT INTO carriers(id, name, inn, updated_at) VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE SET name=excluded.name, inn=excluded.inn, updated_at=excluded.updated_at',
    );
    const route = db.prepare(
      'INSERT INTO route_carriers(route_id, valid_from, carrier_id) VALUES (?,?,?) ON CONFLICT(route_id, valid_from) DO UPDATE SET carrier_id=excluded.carrier_id',
    );
    apply = (rows) => {
      for (const r of rows) {
        if (r.kind !== 'routes') continue;
        carrier.run(r.carrier, r.name, r.inn, now);
        route.run(r.route, r.from, r.carrier);
      }
    };
  } else if (kind === 'partners') {
    apply = (rows) => applyPartners(db, rows, now); // partners feed enrolment and the reports only: no list changes
  } else if (kind === 'guardians') {
    // a child's guardians are replaced by the import's rows for that child (its first row clears them): no list changes
    apply = (rows) =>
      upsertGuardians(
        db,
        rows.flatMap((r) => (r.kind === 'guardians' ? [{ row: r.row, first: r.first === true }] : [])),
      );
  } else {
    const up = db.prepare('INSERT INTO stoplist(token, reason, since) VALUES (?,?,?) ON CONFLICT(token) DO UPDATE SET reason=excluded.reason');
    apply = (rows) => {
      for (const r of rows) {
        if (r.kind !== 'stoplist') continue;
        up.run(r.token, r.reason, today);
        markDirty(dirty, 'stoplist', r.token);
      }
    };
  }
  return { kind, dirty, apply };
}

/** Write validated rows in one transaction; returns the (scope, token) pairs whose entries may have changed. */
export function applyImport(db: Db, kind: ImportKind, rows: Parsed[], today: string): Dirty {
  const ctx = applyContext(db, kind, rows.length, today);
  const staged = rows.map(firstOfPerson(new Set()));
  db.transaction(() => {
    ctx.apply(staged);
    // in the same transaction: the scopes to recompute, cleared once the publisher committed them (a crash in between is redone at start)
    markRecompute(db, ctx.dirty.keys());
  })();
  return ctx.dirty;
}

const RECOMPUTE_KEY = 'import.recompute';

/** Persist "these scopes must be recomputed from the registry" (merged with any still pending). */
export function markRecompute(db: Db, scopes: Iterable<string>): void {
  const all = new Set([...pendingRecompute(db), ...scopes]);
  if (all.size === 0) return;
  db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(
    RECOMPUTE_KEY,
    JSON.stringify([...all].sort()),
  );
}

/** Scopes an import changed in the registry whose lists may not be committed yet (empty when none). */
export function pendingRecompute(db: Db): string[] {
  const v = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(RECOMPUTE_KEY) as string | undefined;
  if (v === undefined) return [];
  const parsed = z.array(z.string()).safeParse(JSON.parse(v));
  return parsed.success ? parsed.data : ['transit', 'stoplist'];
}

export function clearRecompute(db: Db): void {
  db.prepare('DELETE FROM meta WHERE key = ?').run(RECOMPUTE_KEY);
}
