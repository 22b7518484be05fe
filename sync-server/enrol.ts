import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import type { TokenKey } from '../protocol/token.js';
import { RulesFile } from '../protocol/rules-schema.js';
import { seal, verifyProof } from '../protocol/sealing.js';
import { EnrolBody, Proof, TokenCreateBody, type EnrolAnswer, type RotateAnswer, type Secrets, type TokenCreated, type WhoAmI } from '../protocol/enrol.js';
import { devicePolicy, type DevicePolicy } from './broker-auth.js';
import { DeviceRegistry, hashPassword, newPassword, type Identity } from './devices.js';
import { applyMosquittoFiles, mosquittoHash, type MosquittoFiles } from './mosquitto-auth.js';
import { currentVersions, type Db } from './registry.js';
import { readJson } from './http.js';

/**
 * Provisioning on the server: one-time enrolment tokens, device identities,
 * sealed secrets, broker credentials (embedded aedes policy, or Mosquitto's
 * password + ACL files), revocation. Plugged into the sync-server by
 * server.ts (`new Provisioning(…)`) and http.ts (`routes`).
 */
export interface ProvisioningOptions {
  db: Db;
  publicKeyPem: string;
  tokenKey: TokenKey;
  serverUser: string;
  serverPassword: string;
  log: Logger;
  /** External Mosquitto: where to write its password and ACL files. */
  mosquitto?: MosquittoFiles;
  /** Broker URL handed to devices (default: the one the server uses). */
  publicBrokerUrl?: string;
  now?: () => number;
}

export type ExtraRoute = (method: string, path: string, body: () => Promise<unknown>) => Promise<unknown> | undefined;

const PROOF_WINDOW_MS = 5 * 60_000;

function parseBody<T>(schema: z.ZodType<T>, v: unknown): T {
  const r = schema.safeParse(v);
  if (!r.success) throw new RcError(ErrorCode.ServerBadRequest, 'request body does not match the schema', { issues: r.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) });
  return r.data;
}

export class Provisioning {
  readonly registry: DeviceRegistry;
  private policyRef: DevicePolicy | null = null;
  private disconnectFn: ((id: string) => void) | null = null;
  private brokerUrl = '';
  private readonly nonces = new Map<string, number>();
  private readonly now: () => number;

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

  /** Rewrite Mosquitto's password and ACL files from the registry and SIGHUP it (no-op without Mosquitto). */
  writeBrokerFiles(): void {
    if (!this.o.mosquitto) return;
    const active = this.registry.active().map((d) => ({ id: d.id, mosqHash: d.mosqHash, scopes: d.scopes }));
    applyMosquittoFiles(this.o.mosquitto, { user: this.o.serverUser, mosqHash: mosquittoHash(this.o.serverPassword) }, active);
  }

  createToken(raw: unknown): TokenCreated {
    const b = parseBody(TokenCreateBody, raw);
    const t = this.registry.createToken(b, this.now());
    this.o.log.info({ tokenId: t.id, kind: t.kind, school: t.school, route: t.route, expiresAt: t.expiresAt }, 'enrolment token created');
    return t;
  }

  private rules(): RulesFile | null {
    const row = this.o.db.prepare("SELECT doc FROM configs WHERE name = 'rules'").get() as { doc: string } | undefined;
    if (!row) return null;
    const r = RulesFile.safeParse(JSON.parse(row.doc));
    return r.success ? r.data : null;
  }

  private checkRules(b: { kind: string; route: string | null }, rules: RulesFile | null): void {
    if (b.kind === 'bus') {
      if (!rules?.tariff) throw new RcError(ErrorCode.ProvisionNoRules, 'the server has no tariff yet: a bus cannot be set up', { kind: b.kind });
      if (b.route && !(b.route in rules.tariff.routes)) throw new RcError(ErrorCode.ProvisionNoRules, `the tariff has no route ${b.route}`, { route: b.route, routes: Object.keys(rules.tariff.routes) });
    }
    if (b.kind === 'turnstile' && !rules?.school) throw new RcError(ErrorCode.ProvisionNoRules, 'the server has no school rules yet: a turnstile cannot be set up', { kind: b.kind });
    if (b.kind === 'canteen' && !rules?.canteen) throw new RcError(ErrorCode.ProvisionNoRules, 'the server has no canteen rules yet: a canteen terminal cannot be set up', { kind: b.kind });
  }

  private secrets(password: string): Secrets {
    return { password, tokenKey: { version: this.o.tokenKey.version, hex: this.o.tokenKey.key.toString('hex') } };
  }

  async enrol(raw: unknown): Promise<EnrolAnswer> {
    const b = parseBody(EnrolBody, raw);
    const rules = this.rules();
    const password = newPassword();
    const hashes = { pwHash: await hashPassword(password), mosqHash: mosquittoHash(password) };
    // the token's route/school may complete the request: the rules are checked against what the device will be, before the token is consumed
    const d = this.registry.enrol(b, hashes, this.now(), (x) => this.checkRules(x, rules));
    this.writeBrokerFiles();
    this.o.log.info({ device: d.id, kind: d.kind, school: d.school, route: d.route }, 'device enrolled');
    return {
      deviceId: d.id,
      kind: d.kind,
      school: d.school,
      route: d.route,
      brokerUrl: this.brokerUrl,
      username: d.id,
      scopes: d.scopes,
      serverPublicKey: this.o.publicKeyPem,
      rules,
      sealed: seal(this.secrets(password), d.boxKey),
    };
  }

  private checkProof(purpose: string, id: string, raw: unknown): Identity {
    const p = parseBody(Proof, raw);
    const d = this.registry.get(id);
    if (!d) throw new RcError(ErrorCode.ServerNotFound, `no device ${id}`, { device: id });
    const now = this.now();
    if (Math.abs(now - p.at) > PROOF_WINDOW_MS) throw new RcError(ErrorCode.ProvisionClockSkew, 'the device clock differs from the server\'s by more than 5 minutes', { device: id, deviceTime: new Date(p.at).toISOString(), serverTime: new Date(now).toISOString() });
    for (const [n, at] of this.nonces) if (now - at > 2 * PROOF_WINDOW_MS) this.nonces.delete(n);
    const nk = `${id}:${p.nonce}`;
    if (this.nonces.has(nk) || !verifyProof(purpose, id, d.identityKey, p)) throw new RcError(ErrorCode.ProvisionBadProof, 'request not signed by the device\'s enrolled key (or replayed)', { device: id });
    this.nonces.set(nk, now);
    if (d.revokedAt) throw new RcError(ErrorCode.ProvisionDeviceRevoked, `device ${id} was revoked at ${d.revokedAt}`, { device: id, revokedAt: d.revokedAt });
    return d;
  }

  async rotate(id: string, proof: unknown): Promise<RotateAnswer> {
    const d = this.checkProof('rotate', id, proof);
    const password = newPassword();
    this.registry.setPassword(id, { pwHash: await hashPassword(password), mosqHash: mosquittoHash(password) }, this.now());
    this.policyRef?.forget(id);
    this.writeBrokerFiles();
    this.o.log.info({ device: id }, 'device broker credentials rotated');
    return { deviceId: id, username: id, sealed: seal(this.secrets(password), d.boxKey) };
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

  /**
   * The device-facing routes alone (enrol, rotate, whoami, list versions), on a
   * listener of their own that may face the depot/school network, while the
   * operator's API (tokens, revoke, imports) stays on loopback.
   */
  async listen(host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
    const srv = createServer((req, res) => {
      const reply = (status: number, body: unknown) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const method = req.method ?? 'GET';
      const body = () => readJson(req, 64 * 1024);
      let p: Promise<unknown> | undefined;
      try {
        if (method === 'GET' && path === '/v1/health') p = Promise.resolve({ ok: true, versions: currentVersions(this.o.db) });
        else if (method === 'POST' && path === '/v1/enrol') p = body().then((b) => this.enrol(b));
        else {
          const m = /^\/v1\/devices\/([A-Za-z0-9_.:-]{1,64})\/(rotate|whoami)$/.exec(path);
          if (method === 'POST' && m) p = body().then((b): Promise<unknown> | unknown => (m[2] === 'rotate' ? this.rotate(m[1]!, b) : this.whoami(m[1]!, b)));
        }
      } catch (e) {
        p = Promise.reject(e);
      }
      (p ?? Promise.reject(new RcError(ErrorCode.ServerNotFound, `no such endpoint: ${method} ${path}`))).then(
        (r) => reply(200, r),
        (e: unknown) => {
          if (e instanceof RcError) return reply(e.code === ErrorCode.ServerNotFound ? 404 : 400, { error: e.toJSON() });
          this.o.log.error({ err: String(e) }, 'enrol endpoint failed');
          reply(500, { error: { code: ErrorCode.ServerInternal, message: 'internal error' } });
        },
      );
    });
    await new Promise<void>((res, rej) => {
      srv.once('error', (e: NodeJS.ErrnoException) => rej(new RcError(ErrorCode.ServerBadRequest, `cannot listen on ${host}:${port}: ${e.code ?? e.message}`)));
      srv.listen(port, host, () => res());
    });
    const a = srv.address() as AddressInfo;
    return {
      url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
      close: () =>
        new Promise<void>((r) => {
          srv.close(() => r());
          srv.closeAllConnections();
        }),
    };
  }

  /** HTTP routes (see provisioning/wire.ts); undefined when the path is not ours. */
  readonly routes: ExtraRoute = (method, path, body) => {
    if (method === 'POST' && path === '/v1/enrol-tokens') return body().then((b) => this.createToken(b));
    if (method === 'POST' && path === '/v1/enrol') return body().then((b) => this.enrol(b));
    if (method === 'GET' && path === '/v1/devices') return Promise.resolve({ devices: this.registry.list() });
    const m = /^\/v1\/devices\/([A-Za-z0-9_.:-]{1,64})\/(rotate|whoami|revoke)$/.exec(path);
    if (method === 'POST' && m) {
      const id = m[1]!;
      if (m[2] === 'revoke') return Promise.resolve(this.revoke(id));
      if (m[2] === 'rotate') return body().then((b) => this.rotate(id, b));
      return body().then((b) => this.whoami(id, b));
    }
    return undefined;
  };
}

