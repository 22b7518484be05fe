import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { z } from 'zod';
import { ErrorCode, RcError } from './errors.js';

/**
 * Device identity crypto, shared by rc-provision (device side) and the
 * sync-server's enrolment endpoint. All node:crypto.
 *
 *  - identity key: Ed25519, signs the device's requests to the server (rotate).
 *  - box key: X25519; the server seals secrets (broker password, token key) to
 *    it: ephemeral X25519 ECDH → HKDF-SHA256 (salt = epk ‖ device pk,
 *    info = "rc-provision/v1 seal") → AES-256-GCM. Never sent in clear.
 */

const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const INFO = Buffer.from('rc-provision/v1 seal', 'utf8');

export const RawKeyB64 = z
  .string()
  .regex(/^[A-Za-z0-9+/_-]{43}={0,1}$/, 'expected base64 of a raw 32-byte key')
  .refine((s) => Buffer.from(s, 'base64').length === 32, 'expected 32 bytes');

export const Sealed = z
  .object({
    alg: z.literal('x25519-hkdf-sha256-aes256gcm'),
    epk: RawKeyB64,
    iv: z.string().regex(/^[A-Za-z0-9+/]{16}$/),
    ct: z.string().min(1).max(65_536),
    tag: z.string().regex(/^[A-Za-z0-9+/]{22}==$/),
  })
  .strict();
export type Sealed = z.infer<typeof Sealed>;

export interface DeviceKeys {
  identity: KeyObject; // Ed25519 private
  box: KeyObject; // X25519 private
}

export function generateDeviceKeys(): DeviceKeys {
  return { identity: generateKeyPairSync('ed25519').privateKey, box: generateKeyPairSync('x25519').privateKey };
}

export function rawPublic(priv: KeyObject): string {
  const der = createPublicKey(priv).export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32).toString('base64');
}

function publicFromRaw(b64: string, prefix: Buffer, what: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new RcError(ErrorCode.ServerBadRequest, `${what} must be 32 raw bytes (base64)`);
  try {
    return createPublicKey({ key: Buffer.concat([prefix, raw]), format: 'der', type: 'spki' });
  } catch (e) {
    throw new RcError(ErrorCode.ServerBadRequest, `${what} is not a valid key`, {}, { cause: e });
  }
}

export const x25519Public = (b64: string) => publicFromRaw(b64, X25519_SPKI_PREFIX, 'box public key');
export const ed25519Public = (b64: string) => publicFromRaw(b64, ED25519_SPKI_PREFIX, 'identity public key');

export function privatePem(k: KeyObject): string {
  return k.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function loadPrivatePem(pem: string, file: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (e) {
    throw new RcError(ErrorCode.ConfigInvalid, `${file}: not a private key (PEM)`, { file }, { cause: e });
  }
}

function sealKey(shared: Buffer, epk: Buffer, dpk: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([epk, dpk]), INFO, 32));
}

/** Seal a JSON-able value to a device's X25519 public key (raw, base64). */
export function seal(value: unknown, devicePublicB64: string): Sealed {
  const dpk = x25519Public(devicePublicB64);
  const eph = generateKeyPairSync('x25519');
  const epkRaw = Buffer.from(rawPublic(eph.privateKey), 'base64');
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: dpk });
  const key = sealKey(shared, epkRaw, Buffer.from(devicePublicB64, 'base64'));
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(INFO);
  const ct = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()]);
  return {
    alg: 'x25519-hkdf-sha256-aes256gcm',
    epk: epkRaw.toString('base64'),
    iv: iv.toString('base64'),
    ct: ct.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
  };
}

/** Open a sealed value with the device's X25519 private key; a tampered or foreign box → config.invalid. */
export function open(s: Sealed, box: KeyObject): unknown {
  try {
    const epkRaw = Buffer.from(s.epk, 'base64');
    const shared = diffieHellman({ privateKey: box, publicKey: x25519Public(s.epk) });
    const key = sealKey(shared, epkRaw, Buffer.from(rawPublic(box), 'base64'));
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(s.iv, 'base64'));
    d.setAAD(INFO);
    d.setAuthTag(Buffer.from(s.tag, 'base64'));
    const pt = Buffer.concat([d.update(Buffer.from(s.ct, 'base64')), d.final()]);
    return JSON.parse(pt.toString('utf8')) as unknown;
  } catch (e) {
    throw new RcError(ErrorCode.ProvisionSealInvalid, "the server's sealed secrets do not open with this device's key", {}, { cause: e });
  }
}

/** What a device signs to prove its identity: "<purpose>\n<deviceId>\n<timestamp ms>\n<nonce>". */
export function requestProof(purpose: string, deviceId: string, identity: KeyObject, now = Date.now()): { at: number; nonce: string; sig: string } {
  const nonce = randomBytes(12).toString('base64url');
  const msg = Buffer.from(`${purpose}\n${deviceId}\n${now}\n${nonce}`, 'utf8');
  return { at: now, nonce, sig: sign(null, msg, identity).toString('base64') };
}

export function verifyProof(purpose: string, deviceId: string, identityPublicB64: string, p: { at: number; nonce: string; sig: string }): boolean {
  try {
    const msg = Buffer.from(`${purpose}\n${deviceId}\n${p.at}\n${p.nonce}`, 'utf8');
    return verify(null, msg, ed25519Public(identityPublicB64), Buffer.from(p.sig, 'base64'));
  } catch {
    return false;
  }
}
