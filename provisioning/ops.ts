import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCode, RcError } from '../protocol/errors.js';
import { isTimeZone, loadConfig, type Config } from '../device/config/index.js';
import { generateDeviceKeys, open, privatePem, rawPublic, requestProof } from '../protocol/sealing.js';
import { DEFAULT_DIR, ProvisionRecord, files, fingerprint, isProvisioned, loadDevice, writeAllOrNothing, type DeviceState } from './device-dir.js';
import { call, fetchPinnedCa } from './http.js';
import { splitEnrolToken } from '../protocol/tls-pin.js';
import { EnrolAnswer, RotateAnswer, Secrets, WhoAmI } from '../protocol/enrol.js';
import type { DeviceKind, GateDirection } from '../protocol/ids.js';
import { openPkcs11, type Pkcs11Location, type Pkcs11Token } from '../protocol/token-hsm.js';

export interface InitOptions {
  server: string;
  token: string;
  kind: DeviceKind;
  route?: string;
  vehicle?: string;
  school?: string;
  direction?: GateDirection;
  /** partner: the partner id (imported on the server). */
  partner?: string;
  dir?: string;
  /** PC/SC reader name (prefix) for a one-way turnstile; all readers when absent. */
  reader?: string;
  /** Serial peripherals (protocol rcp1). */
  turnstilePort?: string;
  displayPort?: string;
  /** A console peripheral (prints to the terminal): for demos and bench set-ups without hardware. */
  console?: boolean;
  timeZone?: string;
  /** The device's PKCS#11 token: the card-token key arrives wrapped for it and is unwrapped inside; device.json names the token only. */
  pkcs11?: Pkcs11Location;
}

function bad(message: string, context?: Record<string, unknown>): never {
  throw new RcError(ErrorCode.InputInvalid, message, context);
}

/** Check the technician's arguments before anything is generated or sent. */
function checkArgs(o: InitOptions): void {
  if (o.kind !== 'partner' && o.partner) bad('--partner is for partner devices');
  if (o.kind === 'partner') {
    if (!o.partner) bad('a partner device needs --partner ID');
    if (o.school || o.direction || o.route || o.vehicle) bad('--school, --direction, --route and --vehicle are not for partner devices');
  } else if (o.kind === 'bus') {
    if (!o.route) bad('a bus needs --route R (and --vehicle V)');
    if (o.school || o.direction) bad('--school and --direction are for turnstiles and canteens, not buses');
  } else {
    if (!o.school) bad(`a ${o.kind} needs --school ID`);
    if (o.route || o.vehicle) bad('--route and --vehicle are for buses');
    if (o.kind === 'canteen' && o.direction) bad('--direction is for turnstiles');
  }
  // what can be checked here is checked before the token is spent
  if (o.timeZone !== undefined && !isTimeZone(o.timeZone)) bad(`unknown time zone "${o.timeZone}" (an IANA name, e.g. Europe/Moscow)`);
  for (const [opt, v] of [
    ['--turnstile-port', o.turnstilePort],
    ['--display-port', o.displayPort],
    ['--reader', o.reader],
  ] as const)
    if (v !== undefined && v.trim() === '') bad(`${opt} must not be empty`);
}

/** device.json's tokenKey: with a token only its version and where the token is (the key is inside it); else the key in clear (demo, tests). */
function configTokenKey(secrets: Secrets, pkcs11: Pkcs11Location | undefined): Record<string, unknown> {
  const { version, hex, scheme } = secrets.tokenKey;
  if (pkcs11)
    return { version, pkcs11: { library: pkcs11.library, tokenLabel: pkcs11.tokenLabel, ...(pkcs11.pinFile ? { pinFile: resolve(pkcs11.pinFile) } : {}) } };
  if (hex === undefined)
    throw new RcError(ErrorCode.ProvisionSealInvalid, 'the server sent the token key wrapped for a token, but this device has none configured');
  return { version, scheme: scheme ?? 'pan-psn', hex }; // a server that sends no scheme predates the PAN ‖ expiry migration
}

/** Put a wrapped key from the sealed secrets into the device's token (nothing to do for a key in clear). */
function unwrapInto(token: Pkcs11Token | null, secrets: Secrets): void {
  const { version, wrapped } = secrets.tokenKey;
  if (!token) return;
  if (!wrapped) throw new RcError(ErrorCode.ProvisionSealInvalid, 'the server sent the token key in clear although this device has a token', { version });
  token.unwrapKey(version, Buffer.from(wrapped, 'base64'), secrets.tokenKey.scheme ?? 'pan-psn'); // the scheme goes into the key's CKA_ID
  token.deriver(version); // the key is there and usable
}

/** Where the device serves, by kind: a bus's route (and vehicle), a school, a partner and its category. */
function deviceWhere(o: InitOptions, a: EnrolAnswer): Record<string, unknown> {
  switch (a.kind) {
    case 'bus':
      return { route: a.route ?? o.route, ...(o.vehicle ? { vehicle: o.vehicle } : {}) };
    case 'partner':
      return { partnerId: a.partner?.id ?? o.partner, ...(a.partner ? { partnerCategory: a.partner.category } : {}) };
    case 'turnstile':
    case 'canteen':
      return { schoolId: a.school ?? o.school };
  }
}

/** The runtime's config for this device, from the server's answer. */
export function buildConfig(o: InitOptions, dir: string, a: EnrolAnswer, secrets: Secrets): Record<string, unknown> {
  const rules = (a.rules ?? {}) as { tariff?: unknown; school?: unknown; canteen?: unknown; partners?: unknown };
  // a one-way gate's reader has the gate's direction; a gate that reads both ways leaves it unset
  const dirn = o.direction === 'both' ? undefined : o.direction;
  const peripherals: Record<string, unknown>[] = [];
  if (o.turnstilePort) peripherals.push({ kind: 'turnstile', port: o.turnstilePort, protocol: 'rcp1' });
  if (o.displayPort) peripherals.push({ kind: 'display', port: o.displayPort, protocol: 'rcp1' });
  if (o.console) peripherals.push({ kind: 'console' });
  return {
    schema: 1,
    device: {
      id: a.deviceId,
      kind: a.kind,
      timeZone: o.timeZone ?? 'Europe/Moscow',
      ...deviceWhere(o, a),
    },
    ...(a.kind === 'bus' && rules.tariff ? { tariff: rules.tariff } : {}),
    ...(a.kind === 'turnstile' && rules.school ? { school: rules.school } : {}),
    ...(a.kind === 'canteen' && rules.canteen ? { canteen: rules.canteen } : {}),
    ...(a.kind === 'partner' && rules.partners ? { partners: rules.partners } : {}),
    ...(o.reader ? { readers: [{ name: o.reader, ...(dirn ? { direction: dirn } : {}) }] } : {}),
    ...(peripherals.length ? { peripherals } : {}),
    sync: {
      // a clustered broker (issue 16): the server hands out its nodes comma-separated; the first is the device's, the rest its failover
      brokerUrl: a.brokerUrl.split(',')[0]!.trim(),
      ...(a.brokerUrl.includes(',')
        ? {
            failoverUrls: a.brokerUrl
              .split(',')
              .slice(1)
              .map((u) => u.trim()),
          }
        : {}),
      deviceId: a.deviceId,
      scopes: a.scopes,
      serverPublicKey: a.serverPublicKey,
      username: a.username,
      password: secrets.password,
      // mqtts: the broker's CA, pinned from now on (the answer came over the pinned enrolment channel)
      ...(secrets.brokerCa ? { ca: secrets.brokerCa } : {}),
    },
    tokenKey: configTokenKey(secrets, o.pkcs11),
    store: { path: files(dir).store },
  };
}

export interface InitResult {
  deviceId: string;
  dir: string;
  configFile: string;
  brokerUrl: string;
  scopes: string[];
}

/**
 * rc-provision init: keys made here (the private keys never leave the device),
 * one-time token spent at the server, secrets opened with the device's key,
 * the config validated with the runtime's own loader, then every file written
 * at once (device.json last). Any failure leaves the directory as it was.
 */
export async function initDevice(o: InitOptions): Promise<InitResult> {
  const dir = o.dir ?? DEFAULT_DIR;
  if (isProvisioned(dir))
    throw new RcError(ErrorCode.ProvisionAlreadyDone, `${dir} already holds a provisioned device; rc-provision show, or rc-provision reset first`, { dir });
  checkArgs(o);
  // the token is opened (PIN, module, label checked) before the enrolment token is spent
  const token = o.pkcs11 ? openPkcs11(o.pkcs11) : null;
  try {
    return await enrolWith(o, dir, token);
  } finally {
    token?.close();
  }
}

async function enrolWith(o: InitOptions, dir: string, token: Pkcs11Token | null): Promise<InitResult> {
  const keys = generateDeviceKeys();
  const identityKey = rawPublic(keys.identity);
  const boxKey = rawPublic(keys.box);
  const wrapKey = token?.wrappingPublicKey();
  // a token with a CA pin: the server must prove it holds a certificate of that CA before the token goes to it
  const { token: oneTime, pin } = splitEnrolToken(o.token);
  const serverCa = pin ? await fetchPinnedCa(o.server, pin) : null;
  const a = await call(
    o.server,
    'POST',
    '/v1/enrol',
    EnrolAnswer,
    {
      token: oneTime,
      kind: o.kind,
      ...(o.school ? { school: o.school } : {}),
      ...(o.route ? { route: o.route } : {}),
      ...(o.vehicle ? { vehicle: o.vehicle } : {}),
      ...(o.direction ? { direction: o.direction } : {}),
      ...(o.partner ? { partner: o.partner } : {}),
      identityKey,
      boxKey,
      ...(wrapKey ? { wrapKey } : {}),
    },
    15_000,
    serverCa ? { ca: serverCa } : undefined,
  );
  const opened = Secrets.safeParse(open(a.sealed, keys.box));
  if (!opened.success) throw new RcError(ErrorCode.ProvisionSealInvalid, 'the sealed secrets do not match the protocol');
  const secrets = opened.data;
  const f = files(dir);
  const raw = buildConfig(o, dir, a, secrets);
  unwrapInto(token, secrets);
  // the runtime's own loader: what it would refuse, init refuses before writing anything
  const config: Config = loadConfig(raw, f.config);
  const record: ProvisionRecord = {
    deviceId: a.deviceId,
    kind: a.kind,
    server: o.server,
    school: a.school,
    route: a.route,
    vehicle: o.vehicle ?? null,
    partner: a.partner?.id ?? null,
    direction: o.direction ?? null,
    brokerUrl: a.brokerUrl,
    scopes: a.scopes,
    enrolledAt: new Date().toISOString(),
    rotatedAt: null,
    identityKey,
    boxKey,
    serverKeyFingerprint: fingerprint(a.serverPublicKey),
    tokenKeyVersion: secrets.tokenKey.version,
    serverCa,
  };
  try {
    writeAllOrNothing(dir, [
      { file: f.identity, text: privatePem(keys.identity) },
      { file: f.box, text: privatePem(keys.box) },
      { file: f.provision, text: JSON.stringify(record, null, 2) + '\n' },
      { file: f.config, text: JSON.stringify(raw, null, 2) + '\n' },
    ]);
  } catch (e) {
    // the server already enrolled this identity: the operator should revoke it and hand out a new token
    if (e instanceof RcError)
      throw new RcError(e.code, `${e.message}; the token is spent (device ${a.deviceId} was enrolled): ask the operator to revoke it and for a new token`, {
        ...e.context,
        deviceId: a.deviceId,
      });
    throw e;
  }
  return { deviceId: config.device.id, dir, configFile: f.config, brokerUrl: a.brokerUrl, scopes: a.scopes };
}

/** rc-provision rotate: new broker credentials from the server (request signed with the identity key). */
export async function rotateDevice(dir: string = DEFAULT_DIR): Promise<{ deviceId: string; rotatedAt: string }> {
  const d = loadDevice(dir);
  const id = d.record.deviceId;
  const pkcs11 = d.config.tokenKey?.pkcs11;
  // with a token, the key (the server's current version) comes back wrapped for it: a rotation of the card-token key reaches the device here
  const token = pkcs11 ? openPkcs11(pkcs11) : null;
  let a: RotateAnswer;
  let opened;
  try {
    const wrapKey = token?.wrappingPublicKey();
    a = await call(
      d.record.server,
      'POST',
      `/v1/devices/${encodeURIComponent(id)}/rotate`,
      RotateAnswer,
      { ...requestProof('rotate', id, d.keys.identity), ...(wrapKey ? { wrapKey } : {}) },
      15_000,
      d.record.serverCa ? { ca: d.record.serverCa } : undefined,
    );
    opened = Secrets.safeParse(open(a.sealed, d.keys.box));
    if (!opened.success) throw new RcError(ErrorCode.ProvisionSealInvalid, 'the sealed secrets do not match the protocol');
    unwrapInto(token, opened.data);
  } finally {
    token?.close();
  }
  const f = files(dir);
  const raw = JSON.parse(JSON.stringify(d.config)) as Config;
  // a new broker CA (the operator replaced it) reaches the device with its new password
  raw.sync = { ...raw.sync!, username: a.username, password: opened.data.password, ...(opened.data.brokerCa ? { ca: opened.data.brokerCa } : {}) };
  raw.tokenKey = configTokenKey(opened.data, pkcs11) as Config['tokenKey'];
  loadConfig(raw, f.config);
  const rotatedAt = new Date().toISOString();
  const record: ProvisionRecord = { ...d.record, rotatedAt, tokenKeyVersion: opened.data.tokenKey.version };
  writeAllOrNothing(dir, [
    { file: f.provision, text: JSON.stringify(record, null, 2) + '\n' },
    { file: f.config, text: JSON.stringify(raw, null, 2) + '\n' },
  ]);
  return { deviceId: id, rotatedAt };
}

/** Ask the server whether this identity is still valid (signed); provision.device-revoked when not. */
export function whoAmI(d: DeviceState): Promise<WhoAmI> {
  const id = d.record.deviceId;
  return call(
    d.record.server,
    'POST',
    `/v1/devices/${encodeURIComponent(id)}/whoami`,
    WhoAmI,
    requestProof('whoami', id, d.keys.identity),
    10_000,
    d.record.serverCa ? { ca: d.record.serverCa } : undefined,
  );
}

export interface ShowInfo {
  deviceId: string;
  kind: string;
  school: string | null;
  route: string | null;
  vehicle: string | null;
  direction: string | null;
  partner: string | null;
  server: string;
  brokerUrl: string;
  username: string | null;
  scopes: string[];
  enrolledAt: string;
  rotatedAt: string | null;
  identityKey: string;
  serverKeyFingerprint: string;
  tokenKeyVersion: number;
  peripherals: string[];
  readers: string[];
  configFile: string;
}

/** rc-provision show: who this device is. Never prints the password or the token key. */
export function showDevice(dir: string = DEFAULT_DIR): ShowInfo {
  const d = loadDevice(dir);
  const r = d.record;
  return {
    deviceId: r.deviceId,
    kind: r.kind,
    school: r.school,
    route: r.route,
    vehicle: r.vehicle,
    direction: r.direction,
    partner: r.partner ?? null,
    server: r.server,
    brokerUrl: d.config.sync?.brokerUrl ?? r.brokerUrl,
    username: d.config.sync?.username ?? null,
    scopes: r.scopes,
    enrolledAt: r.enrolledAt,
    rotatedAt: r.rotatedAt,
    identityKey: r.identityKey,
    serverKeyFingerprint: r.serverKeyFingerprint,
    tokenKeyVersion: r.tokenKeyVersion,
    peripherals: (d.config.peripherals ?? []).map((p) => `${p.kind}${p.port ? `@${p.port}` : ''}`),
    readers: (d.config.readers ?? []).map((x) => x.name),
    configFile: files(dir).config,
  };
}

/** rc-provision reset: keys, store, config, staging wiped. Returns what was removed. */
export function resetDevice(dir: string = DEFAULT_DIR): string[] {
  const f = files(dir);
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  // device.json first: from here on the device counts as not provisioned, even if the rest fails
  for (const file of [f.config, f.identity, f.box, f.provision, f.store, `${f.store}-wal`, `${f.store}-shm`, f.staging]) {
    if (existsSync(file)) {
      rmSync(file, { recursive: true, force: true });
      removed.push(file);
    }
  }
  for (const name of readdirSync(dir)) {
    if (/\.tmp-\d+-[0-9a-f]+$/.test(name)) {
      rmSync(join(dir, name), { force: true });
      removed.push(join(dir, name));
    }
  }
  return removed;
}
