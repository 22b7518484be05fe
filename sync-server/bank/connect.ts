// CONNECT-MERGE: a stand-in for the cabinet branch's sync-server/cabinet/connect.ts (same signature); the integrator
// keeps the cabinet's version and points sync-server/bank/service.ts at it (and drops this file).
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { writeAudit } from '../audit.js';
import type { tokeniseHolderCard } from '../console/cards.js';
import { markDirty, type Dirty } from '../materialize.js';
import type { Db } from '../registry.js';

type TypedCard = ReturnType<typeof tokeniseHolderCard>;

export interface ConnectDeps {
  db: Db;
  /** Recompute and publish the dirty scopes (serialised with imports: server.ts commitAndPublish); not awaited. */
  publish(dirty: Dirty): void;
  /** The masked PAN of a token the registry knows (the cards table keeps none). */
  maskedOf?(token: string): string | undefined;
}

export interface ConnectResult {
  status: 'connected' | 'replaced' | 'unchanged';
  previousMasked?: string;
  effectiveListVersion?: number;
}

/**
 * Connect a card to a person: one active card per person (a new card replaces the old one, whose token leaves the
 * lists in the next version); a card of another person is cabinet.card-taken. The cards row and the audit row are
 * written in one transaction (a savepoint when the caller has one open); the person's list entries are then
 * recomputed as an import of the cards file does (import.ts applyContext: transit and the person's schools).
 */
export function connectCard(deps: ConnectDeps, a: { personId: string; card: TypedCard; via: 'cabinet' | 'bank' | 'staff'; actor: string }): ConnectResult {
  const { db } = deps;
  const dirty: Dirty = new Map();
  const result = db.transaction((): ConnectResult => {
    const other = db.prepare('SELECT person_id FROM cards WHERE token = ?').pluck().get(a.card.token) as string | undefined;
    if (other !== undefined && other !== a.personId)
      throw new RcError(ErrorCode.CabinetCardTaken, 'the card is connected to another person', { masked: a.card.masked });
    const old = db.prepare('SELECT token, expiry FROM cards WHERE person_id = ?').get(a.personId) as { token: string; expiry: string } | undefined;
    if (old && old.token === a.card.token && old.expiry === a.card.expiry) return { status: 'unchanged' };
    const now = new Date().toISOString();
    db.prepare(
      'INSERT INTO cards(person_id, token, key_version, expiry, updated_at) VALUES (?,?,?,?,?) ON CONFLICT(person_id) DO UPDATE SET token=excluded.token, key_version=excluded.key_version, expiry=excluded.expiry, updated_at=excluded.updated_at',
    ).run(a.personId, a.card.token, a.card.keyVersion, a.card.expiry, now);
    const schools = db.prepare('SELECT DISTINCT school_id FROM enrolments WHERE person_id = ?').pluck().all(a.personId) as string[];
    for (const t of old && old.token !== a.card.token ? [old.token, a.card.token] : [a.card.token]) {
      markDirty(dirty, 'transit', t);
      for (const s of schools) markDirty(dirty, `school:${s}`, t);
    }
    const replaced = old !== undefined && old.token !== a.card.token;
    const previousMasked = replaced ? deps.maskedOf?.(old.token) : undefined;
    writeAudit(db, {
      who: a.actor,
      role: null,
      source: a.via,
      action: 'card.connect',
      detail: { person: a.personId, masked: a.card.masked, tokenPrefix: a.card.tokenPrefix, result: replaced ? 'replaced' : old ? 'unchanged' : 'connected' },
      result: 'ok',
    });
    return { status: replaced ? 'replaced' : old ? 'unchanged' : 'connected', ...(previousMasked ? { previousMasked } : {}) };
  })();
  if (dirty.size > 0) deps.publish(dirty);
  return result;
}
