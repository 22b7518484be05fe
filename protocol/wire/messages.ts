import { z } from 'zod';
import { ScopeName, TokenHex } from '../lists.js';
import { DeviceId } from '../ids.js';

/** zod schemas of every JSON message and signed header on the wire. */

export { DeviceId };
const IsoTime = z.iso.datetime({ offset: true });
const Version = z.number().int().min(0).max(0xffffffff);
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

export const ChunkRef = z.object({ n: z.number().int().min(0), records: z.number().int().min(0), sha256: Sha256Hex });
export type ChunkRef = z.infer<typeof ChunkRef>;

export const DeltaRef = z.object({ from: Version, to: Version, sha256: Sha256Hex, records: z.number().int().min(0) });
export type DeltaRef = z.infer<typeof DeltaRef>;

/** Signed header of a manifest: the current version of one scope and its snapshot. */
export const ManifestHeader = z.object({
  t: z.literal('manifest'),
  scope: ScopeName,
  version: Version,
  issuedAt: IsoTime,
  expiresAt: IsoTime,
  entries: z.number().int().min(0),
  records: z.number().int().min(0),
  recordSize: z.literal(24),
  chunks: z.array(ChunkRef).max(100_000),
  deltas: z.array(DeltaRef).max(10_000),
});
export type ManifestHeader = z.infer<typeof ManifestHeader>;

/** Signed header of a delta; the body is 24-byte records (removes flagged). */
export const DeltaHeader = z.object({
  t: z.literal('delta'),
  scope: ScopeName,
  from: Version,
  to: Version,
  issuedAt: IsoTime,
  expiresAt: IsoTime,
  records: z.number().int().min(0),
  sha256: Sha256Hex,
});
export type DeltaHeader = z.infer<typeof DeltaHeader>;

/** Signed header of a configuration document (tariffs, school schedules); the body is its JSON. */
export const ConfigHeader = z.object({
  t: z.literal('config'),
  name: z.string().regex(/^[a-z0-9_-]{1,64}$/),
  version: Version,
  issuedAt: IsoTime,
  expiresAt: IsoTime,
  sha256: Sha256Hex,
});
export type ConfigHeader = z.infer<typeof ConfigHeader>;

/**
 * Signed header of a journal acknowledgement (the body is empty): the server has every entry of `device`
 * up to `upTo` on disk. Signed so that a hostile broker cannot make a device forget unsent entries.
 */
export const JournalAckHeader = z.object({
  t: z.literal('journal-ack'),
  device: DeviceId,
  upTo: z.number().int().min(0),
  issuedAt: IsoTime,
});
export type JournalAckHeader = z.infer<typeof JournalAckHeader>;

/**
 * Signed header of fleet usage (protocol/wire/usage-codec.ts records in the body): a snapshot (`from` null)
 * or a delta from version `from`. Versions are the server's epoch seconds of the tick (monotonic across restarts).
 */
export const UsageHeader = z.object({
  t: z.literal('usage'),
  from: Version.nullable(),
  to: Version,
  issuedAt: IsoTime,
  expiresAt: IsoTime,
  records: z.number().int().min(0),
  sha256: Sha256Hex,
});
export type UsageHeader = z.infer<typeof UsageHeader>;

export const SignedHeader = z.discriminatedUnion('t', [ManifestHeader, DeltaHeader, ConfigHeader, JournalAckHeader, UsageHeader]);
export type SignedHeader = z.infer<typeof SignedHeader>;

/** One journal entry as it travels (mirrors the device journal; no PAN, ever). */
export const WireJournalEntry = z.object({
  seq: z.number().int().min(1),
  time: IsoTime,
  token: TokenHex.nullable(),
  kind: z.string().min(1).max(32),
  result: z.enum(['allow', 'deny', 'event']),
  reason: z.string().min(1).max(64),
  fareKopecks: z.number().int().min(0).max(10_000_000),
  benefit: z.string().max(64).nullable(),
  lists: z.record(z.string(), z.number().int().min(0)).default({}),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type WireJournalEntry = z.infer<typeof WireJournalEntry>;

export const JournalBatch = z.object({
  device: DeviceId,
  entries: z.array(WireJournalEntry).min(1).max(5000),
});
export type JournalBatch = z.infer<typeof JournalBatch>;

/** What a journal ack says, once its signed envelope is opened (see `JournalAckHeader`). */
export const JournalAck = z.object({ device: DeviceId, upTo: z.number().int().min(0) });
export type JournalAck = z.infer<typeof JournalAck>;

export const DeviceStatus = z.object({
  device: DeviceId,
  online: z.boolean(),
  at: IsoTime,
  lists: z.record(z.string(), z.number().int().min(0)).default({}),
  backlog: z.number().int().min(0).default(0),
  reader: z.string().max(64).optional(),
});
export type DeviceStatus = z.infer<typeof DeviceStatus>;

export const SyncRequest = z.object({
  device: DeviceId,
  scopes: z.array(ScopeName).min(1).max(64),
});
export type SyncRequest = z.infer<typeof SyncRequest>;

/** Size limits (bytes). Anything larger is refused with sync.payload-too-large before parsing. */
export const MAX_LIST_MESSAGE = 8 * 1024 * 1024;
export const MAX_CONTROL_MESSAGE = 2 * 1024 * 1024;
/** Records per snapshot chunk (16384 × 24 B = 384 KiB). */
export const CHUNK_RECORDS = 16_384;
/** A delta larger than this is not published; devices take the snapshot instead. */
export const MAX_DELTA_RECORDS = 200_000;
