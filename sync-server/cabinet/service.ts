import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as client from 'openid-client';
import type { CardAnswer, CardBody, ChildDaysAnswer, DebtsAnswer, MeAnswer, StaffCardAnswer, TripsAnswer } from '../../protocol/cabinet-api.js';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { TokenKey } from '../../protocol/token.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';
import type { SessionLimits } from '../auth/sessions.js';
import { tokeniseHolderCard } from '../console/cards.js';
import type { Db } from '../registry.js';
import { serviceDay, settlementOptions, type SettlementOptions } from '../settlement/days.js';
import { connectCard, type ConnectDeps } from './connect.js';
import { AddressLimit, ConnectLock, type ConnectLockOptions } from './lock.js';
import type { DemoIdentityProvider } from './demo-provider.js';
import type { Identity, IdentityProvider } from './provider.js';
import { childDays, myBenefits, myCard, myChildren, myDebts, myTrips } from './queries.js';
import { DEFAULT_HOLDER_LIMITS, createHolderSession, endHolderSession, holderOf, pruneHolderSessions, type Holder } from './sessions.js';

export interface CabinetOptions {
  db: Db;
  /** null: no identity provider configured (the staff-assisted path still works; sign-in is cabinet.provider-config). */
  provider: IdentityProvider | null;
  /** HMAC key for SNILS (snilsKey()). */
  snilsKey: Buffer;
  /** The server's tokeniser (the one imports and the console use). */
  tokenKey: TokenKey | TokenDeriver;
  connect: ConnectDeps;
  log: Logger;
  clock?: () => number;
  /** The operator's calendar (time zone, end of the service day): what "today" is for the trips and a child's days. */
  settlement?: Partial<SettlementOptions> | undefined;
  sessions?: SessionLimits;
  lock?: ConnectLockOptions;
}

/** The SNILS key: the configured file, else DATA/cabinet-snils.key made at first start (0600, beside the server's signing key). */
export function snilsKey(dataDir: string, file?: string): Buffer {
  const f = file ?? join(dataDir, 'cabinet-snils.key');
  if (!existsSync(f)) {
    if (file) throw new RcError(ErrorCode.CabinetProviderConfig, 'the SNILS key file does not exist', { file });
    writeFileSync(f, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    chmodSync(f, 0o600);
  }
  const hex = readFileSync(f, 'utf8').trim();
  if (!/^[0-9a-fA-F]{32,}$/.test(hex))
    throw new RcError(ErrorCode.CabinetProviderConfig, 'the SNILS key file must hold at least 32 hex characters', { file: f });
  return Buffer.from(hex, 'hex');
}

/** SNILS as the registry keeps it: HMAC-SHA256 with the server's SNILS key, hex. */
export const snilsHash = (key: Buffer, snils: string): string => createHmac('sha256', key).update(snils.replace(/\D/g, ''), 'utf8').digest('hex');

/** Link registry persons to their SNILS (keyed hashes only): rc-sync-server identities import. Returns rows written. */
export function importIdentities(db: Db, key: Buffer, rows: readonly { personId: string; snils: string }[]): number {
  const up = db.prepare('INSERT INTO person_snils(snils_hash, person_id) VALUES (?,?) ON CONFLICT(snils_hash) DO UPDATE SET person_id = excluded.person_id');
  db.transaction(() => {
    for (const r of rows) {
      if (!/^\d{11}$/.test(r.snils.replace(/\D/g, ''))) throw new RcError(ErrorCode.ServerImportInvalid, 'a SNILS is 11 digits', { personId: r.personId });
      up.run(snilsHash(key, r.snils), r.personId);
    }
  })();
  return rows.length;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const LOGIN_TTL_MS = 10 * 60_000;

/**
 * The cardholder's cabinet: sign-in through the identity provider, sessions, and what a holder may see and do. Every
 * query is by the session's person id; the only person id taken from a caller is a child's, checked against the
 * guardian link.
 */
export class Cabinet {
  private readonly clock: () => number;
  private readonly days: SettlementOptions;
  private readonly limits: SessionLimits;
  /** Sign-in starts per address (60 per 15 minutes) and failed callbacks per address (20 per 15 minutes); in the registry (lock.ts). */
  private readonly starts: AddressLimit;
  private readonly failures: AddressLimit;
  readonly lock: ConnectLock;
  constructor(private readonly o: CabinetOptions) {
    this.clock = o.clock ?? Date.now;
    this.days = settlementOptions(o.settlement);
    this.limits = o.sessions ?? DEFAULT_HOLDER_LIMITS;
    this.lock = new ConnectLock(this.clock, o.lock, o.db);
    this.starts = new AddressLimit(o.db, { kind: 'login-start', windowMs: 15 * 60_000, perAddress: 60 });
    this.failures = new AddressLimit(o.db, { kind: 'login-failure', windowMs: 15 * 60_000, perAddress: 20 });
    pruneHolderSessions(o.db, this.limits, this.clock());
    // a card that left its holder more than 400 days ago has no trip the cabinet can show (12 months back at most)
    o.db.prepare('DELETE FROM holder_card_history WHERE until_ms < ?').run(this.clock() - 400 * 86_400_000);
  }

  /** Where to send the browser to sign in; the state row waits 10 minutes for the callback. */
  async login(next: string, ip: string): Promise<string> {
    const now = this.clock();
    if (this.starts.blocked(ip, now) || this.failures.blocked(ip, now))
      throw new RcError(ErrorCode.CabinetLoginLimited, 'too many sign-in attempts from this address; wait a few minutes');
    this.starts.record(ip, now);
    const checks = { state: randomBytes(24).toString('base64url'), nonce: randomBytes(24).toString('base64url'), verifier: client.randomPKCECodeVerifier() };
    if (!this.o.provider) throw new RcError(ErrorCode.CabinetProviderConfig, 'no identity provider is configured for the cabinet (--cabinet FILE)');
    const url = await this.o.provider.authorizationUrl(checks);
    pruneHolderSessions(this.o.db, this.limits, now);
    this.o.db
      .prepare('INSERT INTO cabinet_logins(state_hash, nonce, verifier, next, created_ms) VALUES (?,?,?,?,?)')
      .run(sha256(checks.state), checks.nonce, checks.verifier, next, now);
    return url;
  }

  /** The demo provider's sign-in page (HTML) for a sign-in in flight; server.not-found when the provider is not the demo's. */
  demoSignInPage(state: string): string {
    const p = this.o.provider;
    if (p?.kind !== 'demo' || !('signInPage' in p)) throw new RcError(ErrorCode.ServerNotFound, "the demo's sign-in page exists only in the demo (npm start)");
    return (p as DemoIdentityProvider).signInPage(state);
  }

  /** The provider's callback: a new session for the person, and where to go; coded errors (the route turns them into a redirect). */
  async callback(query: Record<string, string>, ip: string): Promise<{ sessionId: string; next: string }> {
    const now = this.clock();
    if (this.failures.blocked(ip, now)) throw new RcError(ErrorCode.CabinetLoginLimited, 'too many failed sign-ins from this address; wait a few minutes');
    try {
      const state = query['state'] ?? '';
      const row = this.o.db.prepare('SELECT nonce, verifier, next, created_ms FROM cabinet_logins WHERE state_hash = ?').get(sha256(state)) as
        { nonce: string; verifier: string; next: string; created_ms: number } | undefined;
      // one use: gone whatever happens next
      if (row) this.o.db.prepare('DELETE FROM cabinet_logins WHERE state_hash = ?').run(sha256(state));
      if (!row || now - row.created_ms > LOGIN_TTL_MS) throw new RcError(ErrorCode.CabinetBadState, 'this sign-in link is unknown, used or expired');
      if (query['error'])
        throw new RcError(ErrorCode.CabinetLoginDeclined, 'the sign-in was cancelled at the identity provider', { error: query['error'].slice(0, 64) });
      if (!this.o.provider) throw new RcError(ErrorCode.CabinetProviderConfig, 'no identity provider is configured for the cabinet');
      const identity = await this.o.provider.identify(query, { state, nonce: row.nonce, verifier: row.verifier });
      const personId = this.personFor(identity);
      const sessionId = createHolderSession(this.o.db, { personId, subject: identity.subject, name: identity.name, esia: identity.esia }, now);
      this.o.log.info({ subject: identity.subject, personId }, 'cardholder signed in');
      return { sessionId, next: row.next };
    } catch (e) {
      this.failures.record(ip, now);
      const code = isRcError(e) ? e.code : ErrorCode.CabinetProviderDown;
      this.o.log.warn({ code, ip, err: isRcError(e) ? e.message : String(e).slice(0, 200) }, 'cardholder sign-in refused');
      throw isRcError(e) ? e : new RcError(ErrorCode.CabinetProviderDown, 'the sign-in failed at the identity provider');
    }
  }

  /**
   * The registry person of a provider identity: the link made at an earlier sign-in; else the person whose SNILS hash
   * matches (rc-sync-server identities import); else a new person id (no benefits; they may still connect a card).
   */
  personFor(id: Identity): string {
    const db = this.o.db;
    const linked = db.prepare('SELECT person_id FROM holder_links WHERE subject = ?').pluck().get(id.subject) as string | undefined;
    if (linked) return linked;
    const bySnils = id.snils
      ? (db.prepare('SELECT person_id FROM person_snils WHERE snils_hash = ?').pluck().get(snilsHash(this.o.snilsKey, id.snils)) as string | undefined)
      : undefined;
    const person = bySnils ?? `H${randomBytes(8).toString('hex').toUpperCase()}`;
    db.prepare('INSERT INTO holder_links(subject, person_id, created_at) VALUES (?,?,?)').run(id.subject, person, new Date(this.clock()).toISOString());
    return person;
  }

  holder(sessionId: string): Holder | null {
    return holderOf(this.o.db, sessionId, this.limits, this.clock());
  }

  logout(sessionId: string | undefined): void {
    if (sessionId) endHolderSession(this.o.db, sessionId);
  }

  me(h: Holder): MeAnswer {
    const db = this.o.db;
    return {
      holder: { name: h.name, esia: h.esia },
      csrf: h.csrf,
      card: myCard(db, h.personId),
      benefits: myBenefits(db, h.personId),
      children: myChildren(db, h.personId),
      // the day the trips and days ranges end on (dayRange counts from the same clock): the demo's day in the demo
      today: this.today(),
    };
  }

  /** Connect or replace the holder's card; card.bad-pan / card.bad-expiry count towards the connect lock. */
  async connect(h: Holder, body: CardBody, ip: string): Promise<CardAnswer> {
    const until = this.lock.lockedUntil(h.personId, ip);
    if (until !== null)
      throw new RcError(ErrorCode.CabinetConnectLocked, 'too many wrong card numbers: connecting is locked for an hour', {
        until: new Date(until).toISOString(),
      });
    let card;
    try {
      card = tokeniseHolderCard(body.pan, body.expiry, this.o.tokenKey);
    } catch (e) {
      if (isRcError(e, ErrorCode.CardBadPan) || isRcError(e, ErrorCode.CardBadExpiry)) this.lock.failed(h.personId, ip);
      throw e;
    }
    const result = await connectCard(this.o.connect, { personId: h.personId, card, via: 'cabinet', actor: h.subject });
    return { card: myCard(this.o.db, h.personId)!, result };
  }

  /** The staff-assisted path: an operator connects the card for a person who cannot use ESIA. */
  async staffConnect(personId: string, body: CardBody, actor: string): Promise<StaffCardAnswer> {
    const card = tokeniseHolderCard(body.pan, body.expiry, this.o.tokenKey);
    const result = await connectCard(this.o.connect, { personId, card, via: 'staff', actor });
    return { personId, masked: card.masked, expiry: card.expiry, result };
  }

  trips(h: Holder, q: { from?: string | undefined; to?: string | undefined }): TripsAnswer {
    return { trips: myTrips(this.o.db, h.personId, q, new Date(this.clock()), this.today()) };
  }

  childDays(h: Holder, child: string, q: { from?: string | undefined; to?: string | undefined }): ChildDaysAnswer {
    return childDays(this.o.db, h.personId, child, q, new Date(this.clock()), this.today());
  }

  /** Today's service day in the operator's calendar (not the UTC date: from 21:00 UTC it is already tomorrow in Moscow). */
  private today(): string {
    return serviceDay(this.clock(), this.days);
  }

  debts(h: Holder): DebtsAnswer {
    return { debts: myDebts(this.o.db, h.personId, (ms) => serviceDay(ms, this.days)) };
  }
}
