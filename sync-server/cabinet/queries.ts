import { categoryName, ruleWords } from '../portal/rule-words.js';
import type { Benefit, CabinetCard, Child, ChildDay, Debt, Trip } from '../../protocol/cabinet-api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { publishedRules } from '../categories.js';
import type { Db } from '../registry.js';
import { JOURNAL_COLS, journalView, type JournalDbRow } from '../settlement/queries.js';

/** What the cabinet shows a holder, read from the registry: only rows of the given person (and their own children). */

const STOP_HELP: Record<string, string> = {
  debt: 'a fare charge was declined: pay the debt (see Debts) and the card leaves the stop-list within a day',
  lost: 'the card was reported lost: connect your new card',
};

/** The person's card: status from the registry, the published transit list and the stop-list. */
export function myCard(db: Db, personId: string): CabinetCard | null {
  const c = db
    .prepare(
      'SELECT c.token, c.expiry, c.updated_at, h.masked, h.connected_at FROM cards c LEFT JOIN holder_cards h ON h.person_id = c.person_id WHERE c.person_id = ?',
    )
    .get(personId) as { token: string; expiry: string; updated_at: string; masked: string | null; connected_at: string | null } | undefined;
  if (!c) return null;
  const stop = db.prepare('SELECT reason FROM stoplist WHERE token = ?').pluck().get(c.token) as string | undefined;
  const listed = db.prepare("SELECT 1 FROM entries WHERE scope = 'transit' AND token = ?").get(c.token) !== undefined;
  const status = stop !== undefined ? 'stopped' : listed ? 'active' : 'pending';
  return {
    // a card connected by a bank file has no masked PAN here: the token prefix stands in for it
    masked: c.masked ?? `token ${c.token.slice(0, 8)}`,
    expiry: c.expiry,
    status,
    ...(stop !== undefined ? { stopReason: `${stop}: ${STOP_HELP[stop] ?? 'ask the operator why and what to do'}` } : {}),
    since: c.connected_at ?? c.updated_at,
  };
}

/** The person's benefits, named and described by the published rules' tariff (the first rules document that defines each). */
export function myBenefits(db: Db, personId: string): Benefit[] {
  const rows = db.prepare('SELECT category, valid_from, valid_to FROM benefits WHERE person_id = ? ORDER BY category, valid_from').all(personId) as {
    category: string;
    valid_from: string;
    valid_to: string;
  }[];
  const tariffs = [...publishedRules(db).values()].flatMap((r) => (r.tariff ? [r.tariff] : []));
  return rows.map((b) => {
    const t = tariffs.find((x) => x.categories[b.category] || x.benefits[b.category]);
    const rule = t?.benefits[b.category];
    return {
      category: b.category,
      name: categoryName(b.category, t),
      rule: rule ? ruleWords(rule) : { ru: 'Льгота не действует в транспорте', en: 'No fare benefit on transport' },
      validFrom: b.valid_from,
      validTo: b.valid_to,
    };
  });
}

/**
 * The holder's children: the guardians import's rows whose guardian_id is the holder's person id (a guardian in the
 * registry is named by their person id in that file; the README says so).
 */
export function myChildren(db: Db, personId: string): Child[] {
  return db.prepare('SELECT person_id AS "personId", child_name AS name FROM guardians WHERE guardian_id = ? ORDER BY child_name').all(personId) as Child[];
}

const dayMs = (d: string) => Date.parse(`${d}T00:00:00Z`);

/** A range of days: `to` inclusive, at most 12 months back from today, `from` not after `to`. */
export function dayRange(
  q: { from?: string | undefined; to?: string | undefined },
  now: Date,
  defaultDays: number,
  today: string,
): { fromMs: number; toMs: number } {
  const to = q.to ?? today;
  const earliest = new Date(now);
  earliest.setUTCFullYear(earliest.getUTCFullYear() - 1);
  const from = q.from ?? new Date(dayMs(to) - defaultDays * 86_400_000).toISOString().slice(0, 10);
  if (Number.isNaN(dayMs(from)) || Number.isNaN(dayMs(to)) || from > to)
    throw new RcError(ErrorCode.ServerBadRequest, 'from and to must be dates, from not after to', { from, to });
  if (dayMs(from) < dayMs(earliest.toISOString().slice(0, 10)))
    throw new RcError(ErrorCode.ServerBadRequest, 'the cabinet shows at most 12 months back', { from, earliest: earliest.toISOString().slice(0, 10) });
  return { fromMs: dayMs(from) - 86_400_000 / 2, toMs: dayMs(to) + 86_400_000 * 1.5 };
}

function journalOf(db: Db, token: string, fromMs: number, toMs: number, kinds: readonly string[]): ReturnType<typeof journalView>[] {
  const rows = db
    .prepare(
      `SELECT ${JOURNAL_COLS} FROM journal WHERE token = ? AND eff_ms >= ? AND eff_ms < ? AND kind IN (${kinds.map(() => '?').join(',')}) ORDER BY eff_ms, device, seq LIMIT 20000`,
    )
    .all(token, fromMs, toMs, ...kinds) as JournalDbRow[];
  return rows.map(journalView);
}

/** One card a person has or had: its token, how the cabinet names it, and the time it was theirs (ms; open ends: null). */
interface CardSpan {
  token: string;
  masked: string;
  sinceMs: number | null;
  untilMs: number | null;
}

/** How the cabinet names a card it knows no masked number of (a bank file's card): by its token's first characters. */
const byToken = (token: string) => `token ${token.slice(0, 8)}`;

/**
 * Every card of the person: the current one and each card it replaced (holder_card_history, written by the registry's
 * triggers) up to when it stopped being theirs; each from when it stopped being someone else's, if it ever was (a card
 * moved between persons: the earlier holder's trips are never shown to the later one).
 */
function cardsOf(db: Db, personId: string): CardSpan[] {
  const cur = db
    .prepare('SELECT c.token, h.masked, h.token AS typed FROM cards c LEFT JOIN holder_cards h ON h.person_id = c.person_id WHERE c.person_id = ?')
    .get(personId) as { token: string; masked: string | null; typed: string | null } | undefined;
  const past = db.prepare('SELECT token, masked, until_ms FROM holder_card_history WHERE person_id = ? ORDER BY until_ms, id').all(personId) as {
    token: string;
    masked: string | null;
    until_ms: number;
  }[];
  const othersUntil = db.prepare('SELECT max(until_ms) FROM holder_card_history WHERE token = ? AND person_id <> ? AND until_ms <= ?').pluck();
  const since = (token: string, until: number | null) => (othersUntil.get(token, personId, until ?? Number.MAX_SAFE_INTEGER) as number | null) ?? null;
  const out: CardSpan[] = past
    .filter((p) => p.token !== cur?.token)
    .map((p) => ({ token: p.token, masked: p.masked ?? byToken(p.token), sinceMs: since(p.token, p.until_ms), untilMs: p.until_ms }));
  if (cur)
    out.push({
      token: cur.token,
      masked: cur.masked !== null && (cur.typed === null || cur.typed === cur.token) ? cur.masked : byToken(cur.token),
      sinceMs: since(cur.token, null),
      untilMs: null,
    });
  return out;
}

/** The journal entries of every card of the person within [fromMs, toMs), each card's only while it was theirs; in time order, once each. */
function journalOfPerson(
  db: Db,
  personId: string,
  fromMs: number,
  toMs: number,
  kinds: readonly string[],
): (ReturnType<typeof journalView> & { card: string })[] {
  const seen = new Set<string>();
  const out: (ReturnType<typeof journalView> & { card: string })[] = [];
  for (const c of cardsOf(db, personId).reverse()) {
    const lo = Math.max(fromMs, c.sinceMs ?? fromMs);
    const hi = Math.min(toMs, c.untilMs ?? toMs);
    if (lo >= hi) continue;
    for (const e of journalOf(db, c.token, lo, hi, kinds)) {
      const key = `${e.device}\u0000${e.seq}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ ...e, card: c.masked });
    }
  }
  return out.sort((a, b) => (a.effectiveTime < b.effectiveTime ? -1 : a.effectiveTime > b.effectiveTime ? 1 : 0));
}

/**
 * The holder's trips (bus taps of every card they have had, each with the masked number of the card it was made with)
 * with the back office's settled fare where settled.
 */
export function myTrips(db: Db, personId: string, q: { from?: string | undefined; to?: string | undefined }, now: Date, today: string): Trip[] {
  const r = dayRange(q, now, 31, today);
  const from = q.from ?? new Date(r.fromMs + 43_200_000).toISOString().slice(0, 10);
  const to = q.to ?? today;
  return journalOfPerson(db, personId, r.fromMs, r.toMs, ['bus'])
    .filter((e) => e.serviceDay >= from && e.serviceDay <= to)
    .map((e) => ({
      time: e.effectiveTime,
      route: e.route,
      vehicle: e.vehicle,
      fareKopecks: e.settled?.fareKopecks ?? e.fareKopecks,
      benefit: e.benefit,
      reason: e.settled?.reason ?? e.reason,
      card: e.card,
    }));
}

/** A child's passages and meals, by service day; auth.forbidden unless the holder is the child's guardian. */
export function childDays(
  db: Db,
  holderPerson: string,
  child: string,
  q: { from?: string | undefined; to?: string | undefined },
  now: Date,
  today: string,
): { child: Child; days: ChildDay[] } {
  const c = myChildren(db, holderPerson).find((x) => x.personId === child);
  if (!c) throw new RcError(ErrorCode.AuthForbidden, 'this person is not your child', {});
  const r = dayRange(q, now, 7, today);
  const days = new Map<string, ChildDay>();
  const day = (d: string) => days.get(d) ?? (days.set(d, { day: d, passages: [], meals: [] }), days.get(d)!);
  // every card the child has had (a replaced card's days stay), each while it was theirs
  for (const e of journalOfPerson(db, child, r.fromMs, r.toMs, ['turnstile', 'canteen'])) {
    if (e.kind === 'turnstile') day(e.serviceDay).passages.push({ time: e.effectiveTime, direction: e.direction, result: e.result, device: e.device });
    else day(e.serviceDay).meals.push({ time: e.effectiveTime, meal: e.meal, result: e.result, benefit: e.benefit });
  }
  return { child: c, days: [...days.values()].sort((a, b) => (a.day < b.day ? -1 : 1)) };
}

const HOW_TO_PAY = {
  ru: 'Пополните счёт карты: оператор повторит списание в течение суток, и карта выйдет из стоп-листа. Вопросы — в офисе оператора.',
  en: "Top up the card's account: the operator retries the charge within a day and the card leaves the stop-list. Questions: the operator's office.",
};

/**
 * Declined charges of every card the holder has had (the bus fares the bank refused), each on a service day while the
 * card was theirs and with that card's masked number, oldest first, with how to pay them: a replaced card's debt is
 * still the holder's. `day`: the service day of an instant (settlement/days.ts serviceDay with the operator's calendar).
 */
export function myDebts(db: Db, personId: string, day: (ms: number) => string): Debt[] {
  const declined = db.prepare("SELECT seq, service_day, amount, status FROM charges WHERE token = ? AND status = 'declined' ORDER BY service_day");
  const seen = new Set<number>();
  const out: Debt[] = [];
  for (const c of cardsOf(db, personId)) {
    for (const r of declined.all(c.token) as { seq: number; service_day: string; amount: number; status: string }[]) {
      if (c.sinceMs !== null && r.service_day < day(c.sinceMs)) continue; // another person's, before the card was theirs
      if (c.untilMs !== null && r.service_day > day(c.untilMs)) continue; // after the card left them
      if (seen.has(r.seq)) continue;
      seen.add(r.seq);
      out.push({ serviceDay: r.service_day, amountKopecks: r.amount, status: r.status, card: c.masked, howToPay: HOW_TO_PAY });
    }
  }
  return out.sort((x, y) => (x.serviceDay < y.serviceDay ? -1 : x.serviceDay > y.serviceDay ? 1 : 0));
}
