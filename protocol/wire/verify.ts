import type { KeyObject } from 'node:crypto';
import { ErrorCode, RcError } from '../errors.js';
import type { ListDelta, Scope } from '../lists.js';
import { CHUNK_HEADER, CHUNK_MAGIC } from './chunking.js';
import { RECORD_SIZE, decodeRecords } from './codec.js';
import type { CategoryTable } from '../categories.js';
import { openEnvelope, sha256Hex } from './envelope.js';
import { MAX_CONTROL_MESSAGE, MAX_LIST_MESSAGE, type ConfigHeader, type JournalAck, type DeltaHeader, type ManifestHeader } from './messages.js';

/**
 * The device's verification rules. Each function either returns the verified
 * content or throws an RcError; none has a side effect, so a refused message
 * changes nothing.
 *  - sync.payload-too-large / sync.payload-invalid: size, structure, schema
 *  - sync.bad-signature: not signed by the trusted server key
 *  - sync.wrong-scope: signed for another scope than the topic / the device's
 *  - sync.list-rollback: not newer than what the device holds
 *  - sync.list-expired: past its expiry
 *  - sync.bad-chunk: chunk does not match the manifest's hash
 *  - sync.device-mismatch / store.journal-ack-invalid: a journal ack for another device or beyond the journal
 */
export interface VerifyContext {
  key: KeyObject;
  scope: Scope; // the scope the device expects (from the topic it subscribed to)
  held: number; // the version the device holds (0 = none)
  now: Date;
  /** The benefit categories of the rules the device holds (default: the built-in ones). */
  categories?: CategoryTable;
}

function checkCommon(h: { scope?: string; expiresAt: string }, ctx: VerifyContext): void {
  if (h.scope !== undefined && h.scope !== ctx.scope)
    throw new RcError(ErrorCode.SyncWrongScope, 'message is for another scope', { expected: ctx.scope, got: h.scope });
  if (Date.parse(h.expiresAt) <= ctx.now.getTime())
    throw new RcError(ErrorCode.SyncExpired, 'list message has expired', { scope: ctx.scope, expiresAt: h.expiresAt });
}

/** A manifest at a version lower than held is a rollback; equal is fine (nothing to do). */
export function verifyManifest(payload: Uint8Array, ctx: VerifyContext): ManifestHeader {
  const { header, body } = openEnvelope(payload, ctx.key, MAX_LIST_MESSAGE);
  if (header.t !== 'manifest' || body.length !== 0) throw new RcError(ErrorCode.SyncPayloadInvalid, 'expected a manifest');
  checkCommon(header, ctx);
  if (header.version < ctx.held)
    throw new RcError(ErrorCode.SyncRollback, 'manifest is older than the list held', { scope: ctx.scope, held: ctx.held, offered: header.version });
  const sum = header.chunks.reduce((a, c) => a + c.records, 0);
  if (sum !== header.records || header.chunks.some((c, i) => c.n !== i))
    throw new RcError(ErrorCode.SyncPayloadInvalid, 'manifest chunk table is inconsistent');
  return header;
}

export interface VerifiedDelta {
  header: DeltaHeader;
  delta: ListDelta;
}

/** A delta must start at or below the held version and end above it. */
export function verifyDelta(payload: Uint8Array, ctx: VerifyContext): VerifiedDelta {
  const { header, body } = openEnvelope(payload, ctx.key, MAX_LIST_MESSAGE);
  if (header.t !== 'delta') throw new RcError(ErrorCode.SyncPayloadInvalid, 'expected a delta');
  checkCommon(header, ctx);
  if (header.to <= ctx.held)
    throw new RcError(ErrorCode.SyncRollback, 'delta is not newer than the list held', { scope: ctx.scope, held: ctx.held, offered: header.to });
  if (header.from >= header.to) throw new RcError(ErrorCode.SyncPayloadInvalid, 'delta goes backwards', { from: header.from, to: header.to });
  if (body.length !== header.records * RECORD_SIZE || sha256Hex(body) !== header.sha256)
    throw new RcError(ErrorCode.SyncBadChunk, 'delta body does not match its signed hash');
  const d = decodeRecords(ctx.scope, body, true, ctx.categories);
  return { header, delta: { scope: ctx.scope, fromVersion: header.from, toVersion: header.to, upserts: d.entries, removes: d.removes } };
}

/** Verify one snapshot chunk against the (already verified) manifest; returns its records. */
export function verifyChunk(payload: Uint8Array, manifest: ManifestHeader, n: number): Buffer {
  const ref = manifest.chunks[n];
  if (!ref) throw new RcError(ErrorCode.SyncBadChunk, 'chunk number not in the manifest', { n });
  const max = CHUNK_HEADER + ref.records * RECORD_SIZE;
  if (payload.length > MAX_LIST_MESSAGE) throw new RcError(ErrorCode.SyncPayloadTooLarge, 'chunk too large', { bytes: payload.length });
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  if (p.length !== max || !p.subarray(0, 4).equals(CHUNK_MAGIC))
    throw new RcError(ErrorCode.SyncBadChunk, 'chunk has the wrong size or format', { n, bytes: p.length, expected: max });
  if (p.readUInt32BE(4) !== manifest.version || p.readUInt32BE(8) !== n)
    throw new RcError(ErrorCode.SyncBadChunk, 'chunk belongs to another version or position', { n });
  const records = p.subarray(CHUNK_HEADER);
  const h = sha256Hex(records);
  if (h !== ref.sha256 || p.toString('hex', 12, 44) !== h) throw new RcError(ErrorCode.SyncBadChunk, 'chunk hash does not match the manifest', { n });
  return records;
}

export function verifyConfig(payload: Uint8Array, key: KeyObject, now: Date): { header: ConfigHeader; doc: unknown } {
  const { header, body } = openEnvelope(payload, key, MAX_LIST_MESSAGE);
  if (header.t !== 'config') throw new RcError(ErrorCode.SyncPayloadInvalid, 'expected a config document');
  if (Date.parse(header.expiresAt) <= now.getTime()) throw new RcError(ErrorCode.SyncExpired, 'config document has expired', { name: header.name });
  if (sha256Hex(body) !== header.sha256) throw new RcError(ErrorCode.SyncBadChunk, 'config body does not match its signed hash');
  try {
    return { header, doc: JSON.parse(body.toString('utf8')) as unknown };
  } catch {
    throw new RcError(ErrorCode.SyncPayloadInvalid, 'config body is not JSON');
  }
}

/**
 * A journal ack: signed by the server (sync.bad-signature otherwise), for this device (sync.device-mismatch),
 * and not beyond the last seq the device wrote (store.journal-ack-invalid). Not expired by time: the ack is
 * retained and stays true; a replayed older ack only makes the device send entries again (the server dedups).
 */
export function verifyJournalAck(payload: Uint8Array, key: KeyObject, device: string, lastSeq: number): JournalAck {
  if (Buffer.from(payload.buffer, payload.byteOffset, Math.min(4, payload.length)).toString('latin1') !== 'RCS1') {
    throw new RcError(ErrorCode.SyncBadSignature, 'journal ack is not signed', { bytes: payload.length });
  }
  const { header, body } = openEnvelope(payload, key, MAX_CONTROL_MESSAGE);
  if (header.t !== 'journal-ack' || body.length !== 0) throw new RcError(ErrorCode.SyncPayloadInvalid, 'expected a journal ack');
  if (header.device !== device) throw new RcError(ErrorCode.SyncDeviceMismatch, 'journal ack for another device', { device: header.device });
  if (header.upTo > lastSeq) {
    throw new RcError(ErrorCode.JournalAckInvalid, 'journal ack beyond the last entry written', { upTo: header.upTo, lastSeq });
  }
  return { device: header.device, upTo: header.upTo };
}

/** Parse a JSON control message with a zod schema, refusing size first. */
export function parseControl<T>(
  payload: Uint8Array,
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } },
  max: number,
): T {
  if (payload.length > max) throw new RcError(ErrorCode.SyncPayloadTooLarge, 'control message too large', { bytes: payload.length, max });
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('utf8'));
  } catch {
    throw new RcError(ErrorCode.SyncPayloadInvalid, 'control message is not JSON');
  }
  const r = schema.safeParse(json);
  if (!r.success)
    throw new RcError(ErrorCode.SyncPayloadInvalid, 'control message does not match the schema', {
      issues: r.error.issues.slice(0, 3).map((i) => `${i.path.map(String).join('.')}: ${i.message}`),
    });
  return r.data;
}
