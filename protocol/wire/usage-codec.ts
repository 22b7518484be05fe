import { createHash, type KeyObject } from 'node:crypto';
import { ErrorCode, RcError } from '../errors.js';
import { BUILT_IN_TABLE, type CategoryTable } from '../categories.js';
import { RECORD_SIZE } from './codec.js';
import { openEnvelope, sealEnvelope, sha256Hex } from './envelope.js';
import type { UsageHeader } from './messages.js';

/**
 * Fleet usage on the wire (issue 10 item 4): the same fixed 24-byte records as
 * the lists (16 bytes token + 8 bytes payload), three record types of their own
 * (4, 5, 6 in the low 3 bits of byte 16; the list types are 0..3).
 *
 *  usage card (4), one per card active in the current windows:
 *    16     4 | remove bit 0x08 | transfers used since the last paid tap << 4 (0..15)
 *    17     quota category wire id (protocol/categories.ts), 0xff none
 *    18     quota trips used this period (saturates at 255)
 *    19..20 fares charged today, kopecks, u16 big-endian (saturates at 65535: a daily cap above 655.35 ₽ cannot be carried)
 *    21..22 the last paid tap: 2-second units since (day start − 12 h), 0xffff none
 *    23     its route: index in the tariff's route names sorted, 0xff a route the tariff does not name
 *  usage day (5), token all zero, exactly one per version: the service day every card record is of
 *    17 zero | 18..19 the date (u16 days since 1970-01-01) | 20..23 its start instant (u32 epoch seconds)
 *  watermark (6), token = deviceKey(device id): the highest journal seq of that device the server counted
 *    17 zero | 18..23 seq (u48 big-endian)
 *
 * Rounding: the last paid tap is floored to 2 s, so a transfer window seen
 * through the fleet closes at most 2 s early; settlement (exact times) decides the charge.
 */
export const T_USAGE = 4;
export const T_USAGE_DAY = 5;
export const T_WATERMARK = 6;
const F_REMOVE = 0x08;
const NO_CAT = 0xff;
const NO_TIME = 0xffff;
export const NO_ROUTE = 0xff;
const UNIT_MS = 2000;
const BACK_MS = 12 * 3_600_000;
const DAY_MS = 86_400_000;
const ZERO_TOKEN = '0'.repeat(32);

export interface UsageCard {
  token: string;
  quotaCategory: string | null;
  quotaUsed: number;
  fareToday: number;
  lastPaid: { effMs: number; routeIndex: number; transfers: number } | null;
}

export interface UsageDay {
  /** The local date (YYYY-MM-DD) the card records count. */
  date: string;
  /** Its first instant, epoch ms (a whole second). */
  startMs: number;
}

export interface UsageWatermark {
  /** deviceKey(device id), 32 hex digits. */
  key: string;
  seq: number;
}

export interface DecodedUsage {
  day: UsageDay | null;
  cards: UsageCard[];
  watermarks: UsageWatermark[];
  /** Tokens of cards no longer active (deltas only). */
  removes: string[];
}

function invalid(msg: string, ctx?: Record<string, unknown>): RcError {
  return new RcError(ErrorCode.SyncPayloadInvalid, msg, ctx);
}

/** The 16-byte key a watermark record carries for a device (device ids are up to 64 characters). */
export function deviceKey(deviceId: string): string {
  return createHash('sha256').update(`rc-usage-device:${deviceId}`).digest('hex').slice(0, 32);
}

function putToken(buf: Buffer, off: number, token: string): void {
  if (token.length !== 32 || buf.write(token, off, 16, 'hex') !== 16) throw invalid('token is not 16 bytes of hex');
}

function encIsoDate(iso: string): number {
  const d = Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1, Number(iso.slice(8, 10))) / DAY_MS;
  if (!Number.isInteger(d) || d < 0 || d > 0xffff) throw invalid('date out of codec range', { date: iso });
  return d;
}

/** The card record's payload, given the day it counts. */
export function writeUsageCard(buf: Buffer, off: number, c: UsageCard, day: UsageDay, cats: CategoryTable = BUILT_IN_TABLE): void {
  putToken(buf, off, c.token);
  const transfers = c.lastPaid ? Math.min(15, Math.max(0, c.lastPaid.transfers)) : 0;
  buf[off + 16] = T_USAGE | (transfers << 4);
  // the category's wire id in the published rules (categories are data: protocol/categories.ts)
  const cat = c.quotaCategory === null ? NO_CAT : (cats.toWire(c.quotaCategory) ?? -1);
  if (cat < 0 || (c.quotaCategory !== null && cat >= NO_CAT)) throw invalid('unknown benefit category', { category: c.quotaCategory });
  buf[off + 17] = cat;
  buf[off + 18] = Math.min(255, Math.max(0, Math.trunc(c.quotaUsed)));
  buf.writeUInt16BE(Math.min(0xffff, Math.max(0, Math.trunc(c.fareToday))), off + 19);
  let t = NO_TIME;
  let route = NO_ROUTE;
  if (c.lastPaid) {
    const units = Math.floor((c.lastPaid.effMs - (day.startMs - BACK_MS)) / UNIT_MS);
    // a mark older than 12 h before the day is outside every transfer window: not carried
    if (units >= 0 && units < NO_TIME) {
      t = units;
      route = c.lastPaid.routeIndex >= 0 && c.lastPaid.routeIndex < NO_ROUTE ? c.lastPaid.routeIndex : NO_ROUTE;
    }
  }
  buf.writeUInt16BE(t, off + 21);
  buf[off + 23] = route;
}

/** One version's records: the day, the cards in token order, the watermarks. */
export function encodeUsage(day: UsageDay, cards: readonly UsageCard[], watermarks: readonly UsageWatermark[], removes: readonly string[] = []): Buffer {
  const buf = Buffer.alloc((1 + cards.length + watermarks.length + removes.length) * RECORD_SIZE);
  let off = 0;
  writeUsageDay(buf, off, day);
  off += RECORD_SIZE;
  for (const c of cards) {
    writeUsageCard(buf, off, c, day);
    off += RECORD_SIZE;
  }
  for (const w of watermarks) {
    writeWatermark(buf, off, w);
    off += RECORD_SIZE;
  }
  for (const t of removes) {
    putToken(buf, off, t);
    buf[off + 16] = T_USAGE | F_REMOVE;
    off += RECORD_SIZE;
  }
  return buf;
}

export function writeUsageDay(buf: Buffer, off: number, day: UsageDay): void {
  if (day.startMs % 1000 !== 0 || day.startMs < 0 || day.startMs / 1000 > 0xffffffff) throw invalid('usage day start out of range', { startMs: day.startMs });
  buf.fill(0, off, off + 16);
  buf[off + 16] = T_USAGE_DAY;
  buf[off + 17] = 0;
  buf.writeUInt16BE(encIsoDate(day.date), off + 18);
  buf.writeUInt32BE(day.startMs / 1000, off + 20);
}

export function writeWatermark(buf: Buffer, off: number, w: UsageWatermark): void {
  if (!Number.isSafeInteger(w.seq) || w.seq < 0 || w.seq > 0xffffffffffff) throw invalid('watermark seq out of range', { seq: w.seq });
  putToken(buf, off, w.key);
  buf[off + 16] = T_WATERMARK;
  buf[off + 17] = 0;
  buf.writeUIntBE(w.seq, off + 18, 6);
}

/**
 * Decode usage records (a snapshot or a delta). Refuses (sync.payload-invalid) a
 * length that is not whole records, a list record type, an unknown category id,
 * a card record before the day record, a second day record.
 */
export function decodeUsage(data: Uint8Array, allowRemoves = true, cats: CategoryTable = BUILT_IN_TABLE): DecodedUsage {
  if (data.length % RECORD_SIZE !== 0) throw invalid('record data is not a whole number of records', { bytes: data.length });
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
  const out: DecodedUsage = { day: null, cards: [], watermarks: [], removes: [] };
  for (let off = 0; off < b.length; off += RECORD_SIZE) {
    const index = off / RECORD_SIZE;
    const token = b.toString('hex', off, off + 16);
    const tb = b[off + 16]!;
    const type = tb & 0x07;
    if (tb & F_REMOVE) {
      if (!allowRemoves || tb !== (T_USAGE | F_REMOVE)) throw invalid('unexpected remove record', { index });
      out.removes.push(token);
      continue;
    }
    if (type === T_USAGE_DAY) {
      if (tb !== T_USAGE_DAY || token !== ZERO_TOKEN || out.day) throw invalid('bad usage day record', { index });
      out.day = { date: new Date(b.readUInt16BE(off + 18) * DAY_MS).toISOString().slice(0, 10), startMs: b.readUInt32BE(off + 20) * 1000 };
      continue;
    }
    if (type === T_WATERMARK) {
      if (tb !== T_WATERMARK) throw invalid('bad watermark record', { index });
      out.watermarks.push({ key: token, seq: b.readUIntBE(off + 18, 6) });
      continue;
    }
    if (type !== T_USAGE) throw invalid('record type does not belong to a usage scope', { index });
    const day = out.day;
    if (!day) throw invalid('usage card record before the day record', { index });
    const catId = b[off + 17]!;
    const cat = catId === NO_CAT ? null : cats.fromWire(catId);
    if (cat === undefined) throw invalid('unknown benefit category id', { id: catId });
    const t = b.readUInt16BE(off + 21);
    out.cards.push({
      token,
      quotaCategory: cat,
      quotaUsed: b[off + 18]!,
      fareToday: b.readUInt16BE(off + 19),
      lastPaid: t === NO_TIME ? null : { effMs: day.startMs - BACK_MS + t * UNIT_MS, routeIndex: b[off + 23]!, transfers: tb >> 4 },
    });
  }
  return out;
}

/** A signed usage message: a snapshot (from null) or a delta from version `from`. */
export function sealUsage(from: number | null, to: number, records: Buffer, now: Date, ttlMs: number, key: KeyObject): Buffer {
  return sealEnvelope(
    {
      t: 'usage',
      from,
      to,
      issuedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
      records: records.length / RECORD_SIZE,
      sha256: sha256Hex(records),
    },
    records,
    key,
  );
}

/**
 * Check a usage message: signature (sync.bad-signature), type, hash and record count
 * (sync.payload-invalid), expiry (sync.expired). The records are decoded by the store.
 */
export function openUsage(payload: Uint8Array, key: KeyObject, now: Date): { header: UsageHeader; records: Buffer } {
  const { header, body } = openEnvelope(payload, key);
  if (header.t !== 'usage') throw invalid('expected a usage message');
  if (sha256Hex(body) !== header.sha256 || body.length !== header.records * RECORD_SIZE) throw invalid('usage body does not match its header');
  if (Date.parse(header.expiresAt) < now.getTime()) throw new RcError(ErrorCode.SyncExpired, 'usage message expired', { expiresAt: header.expiresAt });
  return { header, records: body };
}
