import type { KeyObject } from 'node:crypto';
import type { Scope } from '../lists.js';
import { RECORD_SIZE } from './codec.js';
import { sealEnvelope, sha256Hex } from './envelope.js';
import { CHUNK_RECORDS, type ChunkRef, type DeltaRef, type ManifestHeader } from './messages.js';

/**
 * Chunk payload (not signed itself; its hash is in the signed manifest):
 *   "RCK1" | u32 BE version | u32 BE n | sha256 of records (32 bytes) | records
 */
export const CHUNK_MAGIC = Buffer.from('RCK1', 'ascii');
export const CHUNK_HEADER = 4 + 4 + 4 + 32;

export function encodeChunk(version: number, n: number, records: Buffer): Buffer {
  const h = Buffer.alloc(CHUNK_HEADER);
  CHUNK_MAGIC.copy(h, 0);
  h.writeUInt32BE(version, 4);
  h.writeUInt32BE(n, 8);
  Buffer.from(sha256Hex(records), 'hex').copy(h, 12);
  return Buffer.concat([h, records]);
}

/** Split snapshot records into chunk payloads (never inside a record, never inside one card's records). */
export function splitChunks(version: number, records: Buffer, chunkRecords = CHUNK_RECORDS): { refs: ChunkRef[]; payloads: Buffer[] } {
  const refs: ChunkRef[] = [];
  const payloads: Buffer[] = [];
  const step = chunkRecords * RECORD_SIZE;
  for (let off = 0, n = 0, end: number; off < records.length; off = end, n++) {
    end = Math.min(records.length, off + step);
    // never split one card's records (a transit card with several benefits) across chunks
    while (end < records.length && records.compare(records, end - RECORD_SIZE, end - RECORD_SIZE + 16, end, end + 16) === 0) end += RECORD_SIZE;
    const part = records.subarray(off, end);
    refs.push({ n, records: part.length / RECORD_SIZE, sha256: sha256Hex(part) });
    payloads.push(encodeChunk(version, n, part));
  }
  return { refs, payloads };
}

export interface ManifestInput {
  scope: Scope;
  version: number;
  entries: number;
  records: number;
  chunks: ChunkRef[];
  deltas: DeltaRef[];
  now: Date;
  ttlMs: number;
}

export function sealManifest(m: ManifestInput, key: KeyObject): Buffer {
  const header: ManifestHeader = {
    t: 'manifest',
    scope: m.scope,
    version: m.version,
    issuedAt: m.now.toISOString(),
    expiresAt: new Date(m.now.getTime() + m.ttlMs).toISOString(),
    entries: m.entries,
    records: m.records,
    recordSize: 24,
    chunks: m.chunks,
    deltas: m.deltas,
  };
  return sealEnvelope(header, Buffer.alloc(0), key);
}

export function sealDelta(
  scope: Scope,
  from: number,
  to: number,
  records: Buffer,
  now: Date,
  ttlMs: number,
  key: KeyObject,
): { payload: Buffer; ref: DeltaRef } {
  const sha256 = sha256Hex(records);
  const payload = sealEnvelope(
    {
      t: 'delta',
      scope,
      from,
      to,
      issuedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
      records: records.length / RECORD_SIZE,
      sha256,
    },
    records,
    key,
  );
  return { payload, ref: { from, to, sha256, records: records.length / RECORD_SIZE } };
}

export function sealConfig(name: string, version: number, doc: unknown, now: Date, ttlMs: number, key: KeyObject): Buffer {
  const body = Buffer.from(JSON.stringify(doc), 'utf8');
  return sealEnvelope(
    { t: 'config', name, version, issuedAt: now.toISOString(), expiresAt: new Date(now.getTime() + ttlMs).toISOString(), sha256: sha256Hex(body) },
    body,
    key,
  );
}

/** The server's journal ack: a signed envelope with an empty body (the device refuses an unsigned one). */
export function sealJournalAck(device: string, upTo: number, now: Date, key: KeyObject): Buffer {
  return sealEnvelope({ t: 'journal-ack', device, upTo, issuedAt: now.toISOString() }, Buffer.alloc(0), key);
}
