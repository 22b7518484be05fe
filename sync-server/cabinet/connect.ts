import type { ConnectResult } from '../../protocol/cabinet-api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Scope } from '../../protocol/lists.js';
import type { Logger } from '../../protocol/log.js';
import { writeAudit } from '../audit.js';
import type { TypedCard } from '../console/cards.js';
import { applyContext, clearRecompute, markRecompute, pendingRecompute } from '../import.js';
import type { Dirty } from '../materialize.js';
import type { Db } from '../registry.js';

export type { ConnectResult };

/** What connectCard needs of the server (start/services.ts builds it; start/lists.ts owns the same commitAndPublish the console's stop-list uses). */
export interface ConnectDeps {
  db: Db;
  /** Commit the dirty scopes' new versions and publish them (serialised with imports and charging). */
  commitAndPublish(d: Dirty): Promise<Scope[]>;
  version(scope: string): number;
  log: Logger;
}

export interface ConnectRequest {
  personId: string;
  card: TypedCard & { keyVersion: number; expiry: string };
  via: 'cabinet' | 'bank' | 'staff';
  /** Who did it, for the audit log: the holder's subject, the bank's id, the operator's name. */
  actor: string;
}

/**
 * Connect a card to a person — the one path for the cabinet, the banks and staff (issue 15). One active card per person:
 * a new card replaces the old one, whose token leaves the lists in the next version. A card connected to another person is
 * refused (cabinet.card-taken, 409). The registry's cards row is written through the cards import's own apply step
 * (import.ts applyContext: the same rows and the same dirty (scope, token) marks as a cards file), with the masked PAN and
 * the audit row, in one transaction, which also marks the scopes for recomputation (import.ts markRecompute: a crash
 * before the publisher committed is redone at start, as for an import); then the publisher recomputes those entries and
 * publishes (commitAndPublish), and the mark is dropped when no import is under way. The card replaced (its token, its
 * masked PAN from holder_cards) goes to holder_card_history by the registry's own trigger (schema.ts), so the holder
 * still sees its trips.
 */
export async function connectCard(deps: ConnectDeps, r: ConnectRequest): Promise<ConnectResult> {
  const { result, dirty } = connectCardInTx(deps.db, r, new Date());
  await publishConnected(deps, dirty, result);
  deps.log.info({ tokenPrefix: r.card.tokenPrefix, via: r.via, status: result.status }, 'card connected to a person');
  return result;
}

/**
 * connectCard's registry half, for a caller that needs it inside its own transaction (the bank API writes its
 * idempotency row, connection and callback in the same one; better-sqlite3 nests it as a savepoint). The caller
 * must then call publishConnected with the dirty marks, after its transaction committed.
 */
export function connectCardInTx(db: Db, r: ConnectRequest, now: Date): { result: ConnectResult; dirty: Dirty } {
  let result!: ConnectResult;
  let dirty: Dirty = new Map();
  db.transaction(() => {
    const owner = db.prepare('SELECT person_id FROM cards WHERE token = ?').pluck().get(r.card.token) as string | undefined;
    if (owner !== undefined && owner !== r.personId)
      throw new RcError(ErrorCode.CabinetCardTaken, 'this card is connected to another person', { masked: r.card.masked });
    const old = db.prepare('SELECT token, expiry FROM cards WHERE person_id = ?').get(r.personId) as { token: string; expiry: string } | undefined;
    const prevMasked = db.prepare('SELECT masked FROM holder_cards WHERE person_id = ?').pluck().get(r.personId) as string | undefined;
    if (old && old.token === r.card.token && old.expiry === r.card.expiry) {
      result = { status: 'unchanged' };
    } else {
      const ctx = applyContext(db, 'cards', 1, now.toISOString().slice(0, 10));
      ctx.apply([{ kind: 'cards', person: r.personId, token: r.card.token, keyVersion: r.card.keyVersion, expiry: r.card.expiry }]);
      dirty = ctx.dirty;
      markRecompute(db, dirty.keys());
      result = old ? { status: 'replaced', ...(prevMasked && old.token !== r.card.token ? { previousMasked: prevMasked } : {}) } : { status: 'connected' };
    }
    db.prepare(
      'INSERT INTO holder_cards(person_id, masked, connected_at, via, token) VALUES (?,?,?,?,?) ON CONFLICT(person_id) DO UPDATE SET masked=excluded.masked, connected_at=CASE WHEN holder_cards.masked = excluded.masked THEN holder_cards.connected_at ELSE excluded.connected_at END, via=excluded.via, token=excluded.token',
    ).run(r.personId, r.card.masked, now.toISOString(), r.via, r.card.token);
    writeAudit(
      db,
      {
        who: r.actor,
        role: r.via === 'staff' ? null : r.via,
        source: r.via,
        action: 'card.connect',
        detail: { personId: r.personId, masked: r.card.masked, tokenPrefix: r.card.tokenPrefix, via: r.via, status: result.status },
        result: 'ok',
      },
      now,
    );
  })();
  return { result, dirty };
}

/** connectCard's second half: the publisher recomputes the marked entries and publishes; the recompute mark is dropped. */
export async function publishConnected(deps: ConnectDeps, dirty: Dirty, result: ConnectResult): Promise<void> {
  const { db } = deps;
  if (dirty.size === 0) return;
  const changed = await deps.commitAndPublish(dirty);
  if (changed.includes('transit')) result.effectiveListVersion = deps.version('transit');
  // the lists agree with the registry again: drop the mark, unless an import is under way (its marks are its own)
  const mine = new Set(dirty.keys());
  db.transaction(() => {
    const running = db.prepare("SELECT 1 FROM imports WHERE state = 'running' LIMIT 1").get() !== undefined;
    if (!running && pendingRecompute(db).every((s) => mine.has(s))) clearRecompute(db);
  })();
}
