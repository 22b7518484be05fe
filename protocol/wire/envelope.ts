import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { ErrorCode, RcError } from '../errors.js';
import { MAX_LIST_MESSAGE, SignedHeader } from './messages.js';

/**
 * Signed envelope for every list, config and journal-ack message:
 *   "RCS1" | u32 BE header length | header (JSON, UTF-8) | body | Ed25519 signature (64 bytes)
 * The signature covers every byte before it.
 */
const MAGIC = Buffer.from('RCS1', 'ascii');
const SIG = 64;

export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export function generateSigningKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

export function publicKeyPem(k: KeyObject): string {
  return k.export({ type: 'spki', format: 'pem' }).toString();
}

export function privateKeyPem(k: KeyObject): string {
  return k.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** A public key from PEM (SPKI) or base64 of the raw 32 bytes. */
export function loadPublicKey(text: string): KeyObject {
  try {
    if (text.includes('BEGIN')) return createPublicKey(text);
    const raw = Buffer.from(text, 'base64');
    if (raw.length !== 32) throw new Error('raw key must be 32 bytes');
    const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]);
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (e) {
    throw new RcError(ErrorCode.ConfigInvalid, 'server public key is not an Ed25519 key (PEM or base64)', {}, { cause: e });
  }
}

export function loadPrivateKey(pem: string): KeyObject {
  return createPrivateKey(pem);
}

export function sealEnvelope(header: SignedHeader, body: Uint8Array, key: KeyObject): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(h.length);
  const signed = Buffer.concat([MAGIC, len, h, body]);
  return Buffer.concat([signed, sign(null, signed, key)]);
}

export interface Opened {
  header: SignedHeader;
  body: Buffer;
}

/**
 * Check size, structure and signature; parse the header with zod.
 * Errors: sync.payload-too-large, sync.payload-invalid, sync.bad-signature.
 */
export function openEnvelope(payload: Uint8Array, key: KeyObject, maxBytes = MAX_LIST_MESSAGE): Opened {
  if (payload.length > maxBytes) throw new RcError(ErrorCode.SyncPayloadTooLarge, 'list message too large', { bytes: payload.length, max: maxBytes });
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  if (p.length < 8 + SIG || !p.subarray(0, 4).equals(MAGIC)) throw new RcError(ErrorCode.SyncPayloadInvalid, 'not a signed list message', { bytes: p.length });
  const hlen = p.readUInt32BE(4);
  if (8 + hlen + SIG > p.length) throw new RcError(ErrorCode.SyncPayloadInvalid, 'signed message header length out of range', { bytes: p.length });
  const signed = p.subarray(0, p.length - SIG);
  const sig = p.subarray(p.length - SIG);
  let ok: boolean;
  try {
    ok = verify(null, signed, key, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw new RcError(ErrorCode.SyncBadSignature, 'signature does not verify with the server key');
  let json: unknown;
  try {
    json = JSON.parse(p.toString('utf8', 8, 8 + hlen));
  } catch {
    throw new RcError(ErrorCode.SyncPayloadInvalid, 'signed header is not JSON');
  }
  const parsed = SignedHeader.safeParse(json);
  if (!parsed.success)
    throw new RcError(ErrorCode.SyncPayloadInvalid, 'signed header does not match the schema', {
      issues: parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  return { header: parsed.data, body: p.subarray(8 + hlen, p.length - SIG) };
}
