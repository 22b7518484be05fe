import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import { keyForDevice, type ServerTokenKey } from '../protocol/token-hsm.js';
import type { RulesFile } from '../protocol/rules-schema.js';
import { seal, verifyProof, type Sealed } from '../protocol/sealing.js';
import { EnrolBody, Proof, TokenCreateBody, type EnrolAnswer, type RotateAnswer, type Secrets, type TokenCreated, type WhoAmI } from '../protocol/enrol.js';
import { devicePolicy, type DevicePolicy } from './broker-auth.js';
import { DeviceRegistry, hashPassword, newPassword, type Identity } from './devices.js';
import { getPartner, type Partner } from './partners.js';
import { publishedRulesFor } from './published-rules.js';
import { aclFileText, applyMosquittoFiles, mosquittoHash, serverAclLines, serverBrokerUsers, type MosquittoFiles } from './mosquitto-auth.js';
import { applyNatsFiles, type NatsFiles } from './nats-auth.js';
import { bcryptHash } from './bcrypt.js';
import type { Db } from './registry.js';

/**
 * Provisioning on the server: one-time enrolment tokens, device identities,
 * sealed secrets, broker credentials (embedded aedes policy, or Mosquitto's
 * password + ACL files), revocation. Plugged into the sync-server by
 * start/broker.ts (`new Provisioning(…)`); its HTTP routes are in http/routes/enrol.ts.
 */
export interface ProvisioningOptions {
  db: Db;
  publicKeyPem: string;
  tokenKey: ServerTokenKey;
  serverUser: string;
  serverPassword: string;
  log: Logger;
  /** External Mosquitto: where to write its password and ACL files. */
  mosquitto?: MosquittoFiles;
  /** A NATS cluster: where to write its users file and how to make the nodes reload it (docs/cluster.md). */
  nats?: NatsFiles;
  /** Broker URL handed to devices (default: the one the server uses). */
  publicBrokerUrl?: string;
  /** mqtts: the broker's CA certificate (PEM), sealed into every enrolment and rotation answer; the device pins it. */
  brokerCa?: string;
  /** The enrolment listener runs TLS: the pin of its CA, appended to every enrolment token (`rce_….<pin>`). */
  enrolCaPin?: string;
  now?: () => number;
}

const PROOF_WINDOW_MS = 5 * 60_000;

function parseBody<T>(schema: z.ZodType<T>, v: unknown): T {
  const r = schema.safeParse(v);
  if (!r.success)
    throw new RcError(ErrorCode.ServerBadRequest, 'request body does not match the schema', {
      issues: r.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  return r.data;
}

export class Provisioning {
  readonly registry: DeviceRegistry;
  private policyRef: DevicePolicy | null = null;
  private disconnectFn: ((id: string) => void) | null = null;
  private brokerUrl = '';
  private readonly now: () => number;
  /** The server's NATS users with their bcrypt hashes, computed once (bcrypt is slow on purpose). */
  private natsServerUsers: { user: string; password: string; acl: string[] }[] | null = null;

  constructor(private readonly o: ProvisioningOptions) {
    this.registry = new DeviceRegistry(o.db);
    this.now = o.now ?? Date.now;
  }

  /** The embedded broker's policy (per-device credentials and topic ACL). */
  policy(opts: { allowAnonymous?: boolean } = {}): DevicePolicy {
    this.policyRef = devicePolicy(this.registry, this.o.serverUser, this.o.serverPassword, { ...opts, log: this.o.log });
    return this.policyRef;
  }

  /** Called once the broker is up: its URL, and how to drop a client from it (embedded broker). */
  attach(brokerUrl: string, disconnect: ((clientId: string) => void) | null): void {
    this.brokerUrl = this.o.publicBrokerUrl ?? brokerUrl;
    this.disconnectFn = disconnect;
  }

  /** Rewrite the external broker's users: Mosquitto's password and ACL files and/or the NATS cluster's authorization file (no-op without either). */
  writeBrokerFiles(): void {
    this.writeNatsFile();
    this.writeMosquittoFiles();
  }

  /** The password's hashes for the registry: bcrypt only when the server keeps a NATS cluster's users. */
  private async hashesOf(password: string) {
    return { pwHash: await hashPassword(password), mosqHash: mosquittoHash(password), natsHash: this.o.nats ? bcryptHash(password) : null };
  }

  /**
   * The NATS cluster's users from the same ACL text as Mosquitto's (nats-auth.ts): the server's users (one per purpose),
   * then every active device with a bcrypt hash. A device enrolled before the server kept NATS users has none: it is left
   * out (it cannot connect to the cluster) until it rotates its password (rc-provision rotate).
   */
  private writeNatsFile(): void {
    if (!this.o.nats) return;
    this.natsServerUsers ??= serverBrokerUsers(this.o.serverUser, this.o.serverPassword).map((u) => ({
      user: u.user,
      password: bcryptHash(u.password),
      acl: serverAclLines(u.purpose),
    }));
    const active = this.registry.active();
    const missing = active.filter((d) => !d.natsHash).map((d) => d.id);
    if (missing.length) this.o.log.warn({ devices: missing.slice(0, 20), count: missing.length }, 'devices without a NATS password hash left out: rotate them');
    const devices = active.filter((d) => d.natsHash);
    const server = this.natsServerUsers.map((u) => ({ user: u.user, mosqHash: '', acl: u.acl }));
    const acl = aclFileText(
      server,
      devices.map((d) => ({ id: d.id, mosqHash: d.mosqHash, scopes: d.scopes })),
    );
    applyNatsFiles(this.o.nats, [...this.natsServerUsers, ...devices.map((d) => ({ user: d.id, password: d.natsHash! }))], acl, this.o.log);
  }

  private writeMosquittoFiles(): void {
    if (!this.o.mosquitto) return;
    const active = this.registry.active().map((d) => ({ id: d.id, mosqHash: d.mosqHash, scopes: d.scopes }));
    // the server's users, one per purpose with its own topics (see mosquitto-auth.ts), then any the operator added
    const server = serverBrokerUsers(this.o.serverUser, this.o.serverPassword).map((u) => ({
      user: u.user,
      mosqHash: mosquittoHash(u.password),
      acl: serverAclLines(u.purpose),
    }));
    applyMosquittoFiles(this.o.mosquitto, [...server, ...(this.o.mosquitto.extraUsers ?? [])], active);
  }

  createToken(raw: unknown): TokenCreated {
    const b = parseBody(TokenCreateBody, raw);
    const t = this.registry.createToken(b, this.now());
    this.o.log.info({ tokenId: t.id, kind: t.kind, school: t.school, route: t.route, expiresAt: t.expiresAt }, 'enrolment token created');
    return this.o.enrolCaPin ? { ...t, token: `${t.token}.${this.o.enrolCaPin}` } : t;
  }

  private checkRules(b: { kind: string; route: string | null; partner: string | null }, rules: RulesFile | null): Partner | null {
    if (b.kind === 'bus') {
      if (!rules?.tariff) throw new RcError(ErrorCode.ProvisionNoRules, 'the server has no tariff yet: a bus cannot be set up', { kind: b.kind });
      if (b.route && !(b.route in rules.tariff.routes))
        throw new RcError(ErrorCode.ProvisionNoRules, `the tariff has no route ${b.route}`, { route: b.route, routes: Object.keys(rules.tariff.routes) });
    }
    if (b.kind === 'turnstile' && !rules?.school)
      throw new RcError(ErrorCode.ProvisionNoRules, 'the server has no school rules yet: a turnstile cannot be set up', { kind: b.kind });
    if (b.kind === 'canteen' && !rules?.canteen)
      throw new RcError(ErrorCode.ProvisionNoRules, 'the server has no canteen rules yet: a canteen terminal cannot be set up', { kind: b.kind });
    if (b.kind !== 'partner') return null;
    const partner = getPartner(this.o.db, b.partner ?? '');
    if (!partner)
      throw new RcError(ErrorCode.ProvisionUnknownPartner, `no partner ${b.partner} on the server (rc-sync-server import partners)`, { partner: b.partner });
    if (!rules?.partners)
      throw new RcError(ErrorCode.ProvisionNoRules, 'the server has no partner rules yet: a partner device cannot be set up', { kind: b.kind });
    if (!(partner.category in rules.partners.categories))
      throw new RcError(ErrorCode.ProvisionNoRules, `the partner rules have no category ${partner.category}`, {
        partner: partner.id,
        category: partner.category,
        categories: Object.keys(rules.partners.categories),
      });
    return partner;
  }

  /**
   * The key goes wrapped for the device's token when it sent its wrapping key; in clear only to a device
   * without one (demo, tests). Computed before anything is consumed or changed: a refusal leaves no trace.
   */
  private tokenKeyFor(wrapKey: string | undefined): Secrets['tokenKey'] {
    return keyForDevice(this.o.tokenKey, wrapKey);
  }

  async enrol(raw: unknown): Promise<EnrolAnswer> {
    const b = parseBody(EnrolBody, raw);
    // what the device will be (the token may complete the request) is known inside the registry's transaction
    const found: { rules: RulesFile | null; partner: Partner | null } = { rules: null, partner: null };
    const tokenKey = this.tokenKeyFor(b.wrapKey);
    const password = newPassword();
    const hashes = await this.hashesOf(password);
    // the answer is sealed before the token is spent: a box key that cannot receive it changes nothing
    const sealed = this.sealFor(b.boxKey, password, tokenKey);
    // the token's route/school may complete the request: the rules are checked against what the device will be, before the token is consumed
    // the rules of what the device will be: `rules`, `rules-<kind>`, `rules-school-<id>` (sync-server/published-rules.ts)
    const d = this.registry.enrol(b, hashes, this.now(), (x) => {
      found.rules = publishedRulesFor(this.o.db, x.kind, x.school);
      found.partner = this.checkRules(x, found.rules);
    });
    this.writeBrokerFiles();
    this.o.log.info({ device: d.id, kind: d.kind, school: d.school, route: d.route }, 'device enrolled');
    return {
      deviceId: d.id,
      kind: d.kind,
      school: d.school,
      route: d.route,
      ...(found.partner ? { partner: { id: found.partner.id, name: found.partner.name, category: found.partner.category } } : {}),
      brokerUrl: this.brokerUrl,
      username: d.id,
      scopes: d.scopes,
      serverPublicKey: this.o.publicKeyPem,
      rules: found.rules,
      sealed,
    };
  }

  /** Seal the secrets to the device's box key; provision.bad-box-key when the key cannot receive them (a low-order or all-zero key). */
  private sealFor(boxKey: string, password: string, tokenKey: Secrets['tokenKey']): Sealed {
    try {
      return seal({ password, tokenKey, ...(this.o.brokerCa ? { brokerCa: this.o.brokerCa } : {}) } satisfies Secrets, boxKey);
    } catch (e) {
      if (e instanceof RcError) throw e;
      throw new RcError(
        ErrorCode.ProvisionBadBoxKey,
        'the box public key cannot receive sealed secrets (a low-order or all-zero key); generate new device keys',
        {},
        { cause: e },
      );
    }
  }

  private checkProof(purpose: string, id: string, raw: unknown): Identity {
    const p = parseBody(Proof, raw);
    const d = this.registry.get(id);
    if (!d) throw new RcError(ErrorCode.ServerNotFound, `no device ${id}`, { device: id });
    const now = this.now();
    if (Math.abs(now - p.at) > PROOF_WINDOW_MS)
      throw new RcError(ErrorCode.ProvisionClockSkew, "the device clock differs from the server's by more than 5 minutes", {
        device: id,
        deviceTime: new Date(p.at).toISOString(),
        serverTime: new Date(now).toISOString(),
      });
    if (!verifyProof(purpose, id, d.identityKey, p))
      throw new RcError(ErrorCode.ProvisionBadProof, "request not signed by the device's enrolled key", { device: id });
    // a nonce lives in the registry twice the proof window: a replay inside the window is refused, also after a restart
    if (!this.registry.useNonce(`${id}:${p.nonce}`, now, 2 * PROOF_WINDOW_MS))
      throw new RcError(ErrorCode.ProvisionBadProof, 'request replayed: its nonce was already used', { device: id, replayed: true });
    if (d.revokedAt) throw new RcError(ErrorCode.ProvisionDeviceRevoked, `device ${id} was revoked at ${d.revokedAt}`, { device: id, revokedAt: d.revokedAt });
    return d;
  }

  async rotate(id: string, proof: unknown): Promise<RotateAnswer> {
    const d = this.checkProof('rotate', id, proof);
    const tokenKey = this.tokenKeyFor(Proof.parse(proof).wrapKey);
    const password = newPassword();
    // sealed before the password changes: a device that could not open the answer would be locked out
    const sealed = this.sealFor(d.boxKey, password, tokenKey);
    this.registry.setPassword(id, await this.hashesOf(password), this.now());
    this.policyRef?.forget(id);
    this.writeBrokerFiles();
    this.o.log.info({ device: id }, 'device broker credentials rotated');
    return { deviceId: id, username: id, sealed };
  }

  whoami(id: string, proof: unknown): WhoAmI {
    const d = this.checkProof('whoami', id, proof);
    return { deviceId: d.id, revoked: false, brokerUrl: this.brokerUrl, serverTime: new Date(this.now()).toISOString() };
  }

  revoke(id: string): { id: string; revokedAt: string } {
    const d = this.registry.revoke(id, this.now());
    this.policyRef?.forget(id);
    this.disconnectFn?.(id);
    this.writeBrokerFiles();
    // its last will may be refused now: the status shows it offline at once
    this.o.db.prepare('UPDATE devices SET online = 0 WHERE id = ?').run(id);
    this.o.log.warn({ device: id }, 'device revoked: credentials cancelled, disconnected');
    return { id, revokedAt: d.revokedAt! };
  }
}
