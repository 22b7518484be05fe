import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { ConnectionRequest, IdempotencyKey, type Connection, type ConnectionStatus, type PublicBanksAnswer } from '../../protocol/bank-api.js';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { TokenKey } from '../../protocol/token.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';
import type { Scope } from '../../protocol/lists.js';
import { connectCardInTx, publishConnected, type ConnectResult } from '../cabinet/connect.js';
import { snilsHash } from '../cabinet/service.js';
import { tokeniseHolderCard } from '../console/cards.js';
import type { Dirty } from '../materialize.js';
import type { Db } from '../registry.js';
import { getBank, type BankRow } from './banks.js';
import { normaliseFingerprint } from './ca.js';
import { BankOutbox, type OutboxOptions } from './outbox.js';
import { DEFAULT_BANK_RATE, TokenBuckets, type RateLimit } from './rate.js';
import { DEFAULT_RETENTION, idempotencyCutoff, purgeBankRecords, type Purged, type RetentionOptions } from './retention.js';

export interface BankDeps {
  db: Db;
  /** The server's tokeniser (the one imports and the console use); the key is never read here. */
  tokenKey: TokenKey | TokenDeriver;
  /** The key of the registry's SNILS hashes (sync-server/cabinet/service.ts snilsKey): an applicant named by SNILS. */
  snilsKey: Buffer;
  /** Commit and publish dirty scopes (start/lists.ts commitAndPublish, serialised with imports). */
  commitAndPublish(d: Dirty): Promise<Scope[]>;
  /** The published version of a scope (Publisher.version). */
  version(scope: string): number;
  log: Logger;
}

export interface BankOptions {
  rate?: RateLimit;
  outbox?: Partial<OutboxOptions>;
  /** How often statuses are re-checked against the registry (changes by imports, the cabinet, the stop-list); default 5 s. */
  refreshMs?: number;
  /** How long Idempotency-Key records and delivered callbacks are kept (retention.ts; default 24 h and 30 days, purged hourly). */
  retention?: Partial<RetentionOptions>;
  clock?: () => number;
}

interface ConnRow {
  id: string;
  bank_id: string;
  person_id: string;
  token: string;
  masked: string;
  expiry: string;
  result: string;
  previous_masked: string | null;
  status: ConnectionStatus;
  list_version: number | null;
  created_at: string;
  updated_at: string;
}

/** What a connection request answers: 200 with the connection, or a coded refusal (both stored under the key). */
export type Answer = { status: 200; body: Connection } | { status: number; error: { code: string; message: string; context?: Record<string, unknown> } };

const view = (r: ConnRow): Connection => ({
  id: r.id,
  status: r.status,
  masked: r.masked,
  expiry: r.expiry,
  result: r.result as Connection['result'],
  ...(r.previous_masked ? { previousMasked: r.previous_masked } : {}),
  ...(r.list_version !== null ? { listVersion: r.list_version } : {}),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Refusals that are the request's outcome (stored under the Idempotency-Key and answered again on a replay). */
const STORED = new Map<string, number>([
  [ErrorCode.BankCardConflict, 409],
  [ErrorCode.BankPersonHasCard, 409],
]);

/**
 * The bank API's logic (routes: sync-server/http/routes/bank.ts):
 *  - who calls: the client certificate's SHA-256 fingerprint, registered and not revoked, of a bank not disabled;
 *  - connect: tokenise on arrival, then one transaction: the idempotency row, connectCard (registry + audit),
 *    the connection row and its 'accepted' callback in the outbox; the lists are recomputed after it;
 *  - statuses: accepted → active (the token is in the transit list's published entries; listVersion: the
 *    transit version at which that was seen) → replaced | stopped, re-checked after each publication and
 *    every refreshMs; each change writes its callback in the same transaction;
 *  - retention (retention.ts): Idempotency-Key records past their window and callbacks delivered long ago are purged
 *    at start and hourly; an undelivered callback never is.
 */
export class BankService {
  readonly outbox: BankOutbox;
  private readonly buckets: TokenBuckets;
  private readonly clock: () => number;
  private readonly retention: RetentionOptions;
  private timer: NodeJS.Timeout | null = null;
  private purgeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly d: BankDeps,
    o: BankOptions = {},
  ) {
    this.clock = o.clock ?? Date.now;
    this.buckets = new TokenBuckets(o.rate ?? DEFAULT_BANK_RATE, this.clock);
    this.outbox = new BankOutbox(d.db, d.log, o.outbox, this.clock);
    this.refreshMs = o.refreshMs ?? 5000;
    this.retention = { ...DEFAULT_RETENTION, ...o.retention };
  }
  private readonly refreshMs: number;

  start(): void {
    this.outbox.start();
    this.timer = setInterval(() => this.refreshSafe(), this.refreshMs);
    this.timer.unref();
    this.refreshSafe();
    // old Idempotency-Key records and delivered callbacks: purged now and every retention.intervalMs
    this.purgeTimer = setInterval(() => this.purgeSafe(), this.retention.intervalMs);
    this.purgeTimer.unref();
    this.purgeSafe();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.purgeTimer = null;
    await this.outbox.close();
  }

  /** The calling bank, from the TLS client certificate (the handshake already checked it against the trusted CAs). */
  identify(raw: IncomingMessage): BankRow {
    const sock = raw.socket as TLSSocket;
    const cert = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate() : null;
    if (!sock.authorized || !cert || !cert.fingerprint256)
      throw new RcError(ErrorCode.BankUnknownCertificate, 'a client certificate of a registered bank is required');
    const fp = normaliseFingerprint(cert.fingerprint256);
    const row = this.d.db.prepare('SELECT bank_id FROM bank_certs WHERE fingerprint = ? AND revoked_at IS NULL').pluck().get(fp) as string | undefined;
    if (row === undefined)
      throw new RcError(ErrorCode.BankUnknownCertificate, 'the client certificate is not registered for a bank (or was revoked)', { fingerprint: fp });
    const bank = getBank(this.d.db, row);
    if (!bank) throw new RcError(ErrorCode.BankUnknownCertificate, 'the client certificate is not registered for a bank', { fingerprint: fp });
    if (bank.disabled) throw new RcError(ErrorCode.BankDisabled, `bank ${bank.id} is disabled`, { bank: bank.id });
    return bank;
  }

  /** Rate limit per bank: 0, or the seconds to wait (the route answers 429 bank.rate-limited with Retry-After). */
  admit(bank: string): number {
    return this.buckets.take(bank);
  }

  /** POST /v1/bank/connections: the stored answer for a replayed key, else the new outcome (stored). */
  connect(bank: BankRow, key: string | undefined, body: ConnectionRequest): Answer {
    if (key === undefined || !IdempotencyKey.safeParse(key).success)
      throw new RcError(ErrorCode.BankIdempotencyKey, 'the Idempotency-Key header is required: 8..128 printable characters');
    const req = ConnectionRequest.parse(body);
    // tokenised on arrival: from here on only the token and the masked PAN exist (400 card.bad-pan / card.bad-expiry)
    const card = tokeniseHolderCard(req.pan, req.expiry, this.d.tokenKey);
    // an applicant by SNILS is kept, like the registry keeps SNILS, as its keyed hash only
    const applicantKey = 'personId' in req.applicant ? req.applicant : { snils: snilsHash(this.d.snilsKey, req.applicant.snils) };
    // the request as the server keeps it: the PAN replaced by its token (a keyed one-way function), never the digits
    const hash = createHash('sha256')
      .update(JSON.stringify({ applicant: applicantKey, token: card.token, expiry: card.expiry, replace: req.replace === true }))
      .digest('hex');
    const db = this.d.db;
    const nowIso = new Date(this.clock()).toISOString();
    let published = null as { result: ConnectResult; dirty: Dirty } | null;
    const answer = db.transaction((): Answer => {
      // a key is remembered for the replay window only (retention.ts): a record past it, not purged yet, is forgotten here
      db.prepare('DELETE FROM bank_requests WHERE bank_id = ? AND key = ? AND created_at < ?').run(
        bank.id,
        key,
        idempotencyCutoff(this.clock(), this.retention),
      );
      const seen = db.prepare('SELECT body_hash, status, answer FROM bank_requests WHERE bank_id = ? AND key = ?').get(bank.id, key) as
        { body_hash: string; status: number; answer: string } | undefined;
      if (seen) {
        if (seen.body_hash !== hash)
          throw new RcError(ErrorCode.BankIdempotencyConflict, 'this Idempotency-Key was used with another request body: nothing was done', { key });
        return seen.status === 200
          ? { status: 200, body: JSON.parse(seen.answer) as Connection }
          : { status: seen.status, error: JSON.parse(seen.answer) as never };
      }
      const personId =
        'personId' in applicantKey
          ? applicantKey.personId
          : (db.prepare('SELECT person_id FROM person_snils WHERE snils_hash = ?').pluck().get(applicantKey.snils) as string | undefined);
      if (personId === undefined)
        throw new RcError(ErrorCode.BankUnknownApplicant, 'no person in the registry has this SNILS (rc-sync-server identities import links them)');
      let out: Answer;
      try {
        const current = db.prepare('SELECT token FROM cards WHERE person_id = ?').pluck().get(personId) as string | undefined;
        if (current !== undefined && current !== card.token && req.replace !== true) {
          const currentMasked = this.maskedOf(current);
          throw new RcError(ErrorCode.BankPersonHasCard, 'the applicant has another active card: send replace: true to replace it', {
            ...(currentMasked ? { currentMasked } : {}),
          });
        }
        let r;
        try {
          const done = connectCardInTx(db, { personId, card, via: 'bank', actor: `bank:${bank.id}` }, new Date(this.clock()));
          r = done.result;
          published = done; // the lists are recomputed once this transaction committed
        } catch (e) {
          if (isRcError(e, ErrorCode.CabinetCardTaken))
            throw new RcError(ErrorCode.BankCardConflict, 'the card is connected to another person', { masked: card.masked }, { cause: e });
          throw e;
        }
        const id = randomBytes(12).toString('base64url');
        const row: ConnRow = {
          id,
          bank_id: bank.id,
          person_id: personId,
          token: card.token,
          masked: card.masked,
          expiry: card.expiry,
          result: r.status,
          previous_masked: r.previousMasked ?? null,
          status: 'accepted',
          list_version: null,
          created_at: nowIso,
          updated_at: nowIso,
        };
        db.prepare(
          `INSERT INTO bank_connections(id, bank_id, person_id, token, masked, expiry, result, previous_masked, status, list_version, created_at, updated_at)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
        ).run(
          row.id,
          row.bank_id,
          row.person_id,
          row.token,
          row.masked,
          row.expiry,
          row.result,
          row.previous_masked,
          row.status,
          row.list_version,
          row.created_at,
          row.updated_at,
        );
        this.outbox.enqueue(bank, view(row));
        // this bank's or another bank's earlier connections of the person are settled by refresh() (replaced)
        out = { status: 200, body: view(row) };
      } catch (e) {
        const status = isRcError(e) ? STORED.get(e.code) : undefined;
        if (status === undefined || !isRcError(e)) throw e;
        out = { status, error: e.toJSON() };
      }
      db.prepare('INSERT INTO bank_requests(bank_id, key, body_hash, status, answer, created_at) VALUES (?,?,?,?,?,?)').run(
        bank.id,
        key,
        hash,
        out.status,
        JSON.stringify('body' in out ? out.body : out.error),
        nowIso,
      );
      return out;
    })();
    // not awaited: the bank gets its answer now, the status callback tells it when the card is in a published list
    if (published !== null && published.dirty.size > 0) void this.publishThenRefresh(published.dirty, published.result);
    this.d.log.info(
      {
        bank: bank.id,
        tokenPrefix: card.tokenPrefix,
        status: answer.status,
        ...('body' in answer ? { connection: answer.body.id, result: answer.body.result } : {}),
      },
      'bank connection request answered',
    );
    return answer;
  }

  /** GET /v1/bank/connections/:id — of this bank only. */
  get(bank: BankRow, id: string): Connection {
    const r = this.d.db.prepare('SELECT * FROM bank_connections WHERE id = ? AND bank_id = ?').get(id, bank.id) as ConnRow | undefined;
    if (!r) throw new RcError(ErrorCode.BankConnectionNotFound, 'no connection of this bank has that id', { id });
    return view(r);
  }

  publicBanks(): PublicBanksAnswer {
    const rows = this.d.db.prepare('SELECT id, name, site, since FROM banks WHERE disabled = 0 ORDER BY name, id').all() as {
      id: string;
      name: string;
      site: string | null;
      since: string;
    }[];
    return { banks: rows.map((r) => ({ id: r.id, name: r.name, ...(r.site ? { site: r.site } : {}), since: r.since })) };
  }

  /** The masked PAN of a token, from the connections banks made (the cards table keeps none). */
  private maskedOf(token: string): string | undefined {
    return (
      (this.d.db.prepare('SELECT masked FROM bank_connections WHERE token = ? ORDER BY created_at DESC LIMIT 1').pluck().get(token) as string | undefined) ??
      undefined
    );
  }

  private async publishThenRefresh(dirty: Dirty, result: ConnectResult): Promise<void> {
    try {
      await publishConnected(this.d, dirty, result);
    } catch (e) {
      this.d.log.error({ err: String(e) }, 'lists not recomputed after a bank connection (the next import or restart does it)');
    }
    this.refreshSafe();
  }

  /** Purge Idempotency-Key records past their window and callbacks delivered long ago (never an undelivered one). */
  purge(): Purged {
    const r = purgeBankRecords(this.d.db, this.clock(), this.retention);
    if (r.requests > 0 || r.callbacks > 0) this.d.log.info({ ...r }, 'old bank idempotency records and delivered callbacks purged');
    return r;
  }

  private purgeSafe(): void {
    try {
      this.purge();
    } catch (e) {
      this.d.log.error({ err: String(e) }, 'old bank records not purged (tried again within the hour)');
    }
  }

  private refreshSafe(): void {
    try {
      this.refresh();
    } catch (e) {
      this.d.log.error({ err: String(e) }, 'bank connection statuses not refreshed');
    }
  }

  /** Re-check open connections against the registry; each status change and its callback in one transaction. */
  refresh(): number {
    const db = this.d.db;
    const open = db.prepare("SELECT * FROM bank_connections WHERE status IN ('accepted', 'active')").all() as ConnRow[];
    if (open.length === 0) return 0;
    const cardOf = db.prepare('SELECT token FROM cards WHERE person_id = ?').pluck();
    const stopped = db.prepare('SELECT 1 FROM stoplist WHERE token = ?').pluck();
    const listed = db.prepare("SELECT 1 FROM entries WHERE scope = 'transit' AND token = ?").pluck();
    const set = db.prepare('UPDATE bank_connections SET status = ?, list_version = coalesce(list_version, ?), updated_at = ? WHERE id = ? AND status = ?');
    let changes = 0;
    const nowIso = new Date(this.clock()).toISOString();
    for (const r of open) {
      const cur = cardOf.get(r.person_id) as string | undefined;
      let next: ConnectionStatus = r.status;
      if (cur !== r.token) next = cur !== undefined ? 'replaced' : 'stopped';
      else if (stopped.get(r.token) !== undefined) next = 'stopped';
      else if (r.status === 'accepted' && listed.get(r.token) !== undefined) next = 'active';
      if (next === r.status) continue;
      const version = next === 'active' ? this.d.version('transit') : null;
      db.transaction(() => {
        if (set.run(next, version, nowIso, r.id, r.status).changes === 0) return;
        const bank = getBank(db, r.bank_id);
        const after = { ...r, status: next, list_version: r.list_version ?? version, updated_at: nowIso };
        if (bank) this.outbox.enqueue(bank, view(after));
        changes++;
      })();
    }
    if (changes > 0) this.d.log.info({ changes }, 'bank connection statuses changed');
    return changes;
  }

  /** A new event id (also its callback's Idempotency-Key). */
  static eventId(): string {
    return randomUUID();
  }
}
