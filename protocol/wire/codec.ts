import { ErrorCode, RcError } from '../errors.js';
import { BUILT_IN_TABLE, type CategoryTable } from '../categories.js';
import { MEAL_CATEGORIES, SCHOOL_ROLES, STOP_REASONS, scopeKind, type AnyEntry, type SchoolEntry, type StopEntry, type TransitEntry } from '../lists.js';

/**
 * Binary list codec: fixed 24-byte records.
 *
 *  bytes 0..15  token (16 bytes)
 *  byte  16     low 3 bits: record type (0 transit card without benefit,
 *               1 transit benefit, 2 school, 3 stop); bit 3: remove (deltas);
 *               bits 4..7: school meal category id + 1 (0 = none)
 *  transit: 17 category id (0xff none) | 18..19 validFrom | 20..21 validTo | 22..23 cardExpiry
 *  school:  17 role<<7 | grade (0x1f none) | 18..19 validFrom | 20..21 validTo | 22..23 cardExpiry
 *  stop:    17 reason id | 18..19 since | 20..23 zero
 *  dates: u16 big-endian days since 1970-01-01; cardExpiry: u16 months since 2000-01.
 *
 * A transit entry with k benefits takes k consecutive records (one if none),
 * each carrying the card expiry. Reason, role and meal ids are array indexes in
 * protocol/lists.ts; a benefit category's id is its wire id in the rules
 * (protocol/categories.ts: the eight built-in ones are their index there too).
 */
export const RECORD_SIZE = 24;

const T_CARD = 0;
const T_BENEFIT = 1;
const T_SCHOOL = 2;
const T_STOP = 3;
const F_REMOVE = 0x08;
const NO_CAT = 0xff;
const NO_GRADE = 0x1f;

const DAY = 86_400_000;

function invalid(msg: string, ctx?: Record<string, unknown>): RcError {
  return new RcError(ErrorCode.SyncPayloadInvalid, msg, ctx);
}

function encDate(iso: string): number {
  const t = Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1, Number(iso.slice(8, 10)));
  const d = t / DAY;
  if (!Number.isInteger(d) || d < 0 || d > 0xffff) throw invalid('date out of codec range', { date: iso });
  return d;
}

const dateCache = new Map<number, string>();
function decDate(d: number): string {
  let s = dateCache.get(d);
  if (s === undefined) {
    s = new Date(d * DAY).toISOString().slice(0, 10);
    dateCache.set(d, s);
  }
  return s;
}

function encMonth(ym: string): number {
  const m = (Number(ym.slice(0, 4)) - 2000) * 12 + Number(ym.slice(5, 7)) - 1;
  if (!Number.isInteger(m) || m < 0 || m > 0xffff) throw invalid('card expiry out of codec range', { expiry: ym });
  return m;
}

function decMonth(m: number): string {
  const y = 2000 + Math.floor(m / 12);
  const mo = (m % 12) + 1;
  return `${y}-${mo < 10 ? '0' : ''}${mo}`;
}

function putToken(buf: Buffer, off: number, token: string): void {
  if (buf.write(token, off, 16, 'hex') !== 16) throw invalid('token is not 16 bytes of hex');
}

/** Number of records an entry takes. */
export function recordCount(e: AnyEntry): number {
  return 'benefits' in e ? Math.max(1, e.benefits.length) : 1;
}

function writeEntry(buf: Buffer, off: number, kind: 'transit' | 'stoplist' | 'school', e: AnyEntry, cats: CategoryTable): number {
  if (kind === 'transit') {
    const t = e as TransitEntry;
    const exp = encMonth(t.cardExpiry);
    if (t.benefits.length === 0) {
      putToken(buf, off, t.token);
      buf[off + 16] = T_CARD;
      buf[off + 17] = NO_CAT;
      buf.writeUInt32BE(0, off + 18);
      buf.writeUInt16BE(exp, off + 22);
      return off + RECORD_SIZE;
    }
    for (const b of t.benefits) {
      const cat = cats.toWire(b.category);
      if (cat === undefined) throw invalid('unknown benefit category', { category: b.category });
      putToken(buf, off, t.token);
      buf[off + 16] = T_BENEFIT;
      buf[off + 17] = cat;
      buf.writeUInt16BE(encDate(b.validFrom), off + 18);
      buf.writeUInt16BE(encDate(b.validTo), off + 20);
      buf.writeUInt16BE(exp, off + 22);
      off += RECORD_SIZE;
    }
    return off;
  }
  if (kind === 'stoplist') {
    const s = e as StopEntry;
    const r = STOP_REASONS.indexOf(s.reason);
    if (r < 0) throw invalid('unknown stop reason', { reason: s.reason });
    putToken(buf, off, s.token);
    buf[off + 16] = T_STOP;
    buf[off + 17] = r;
    buf.writeUInt16BE(encDate(s.since), off + 18);
    buf.writeUInt32BE(0, off + 20);
    return off + RECORD_SIZE;
  }
  const s = e as SchoolEntry;
  const meal = s.mealCategory === null ? 0 : MEAL_CATEGORIES.indexOf(s.mealCategory) + 1;
  const role = SCHOOL_ROLES.indexOf(s.role);
  if (meal < 0 || role < 0) throw invalid('unknown meal category or role');
  putToken(buf, off, s.token);
  buf[off + 16] = T_SCHOOL | (meal << 4);
  buf[off + 17] = (role << 7) | (s.grade === null ? NO_GRADE : s.grade);
  buf.writeUInt16BE(encDate(s.validFrom), off + 18);
  buf.writeUInt16BE(encDate(s.validTo), off + 20);
  buf.writeUInt16BE(encMonth(s.cardExpiry), off + 22);
  return off + RECORD_SIZE;
}

/** Encode entries of one scope (and optional removed tokens) into records; `cats` maps benefit categories to wire ids. */
export function encodeRecords(scope: string, entries: readonly AnyEntry[], removes: readonly string[] = [], cats: CategoryTable = BUILT_IN_TABLE): Buffer {
  const kind = scopeKind(scope);
  let n = removes.length;
  for (const e of entries) n += recordCount(e);
  const buf = Buffer.alloc(n * RECORD_SIZE);
  let off = 0;
  for (const e of entries) off = writeEntry(buf, off, kind, e, cats);
  const rtype = kind === 'transit' ? T_CARD : kind === 'stoplist' ? T_STOP : T_SCHOOL;
  for (const t of removes) {
    putToken(buf, off, t);
    buf[off + 16] = rtype | F_REMOVE;
    off += RECORD_SIZE;
  }
  return buf;
}

export interface DecodedRecords {
  entries: AnyEntry[];
  removes: string[];
}

/**
 * Decode records of one scope. Refuses (sync.payload-invalid) a length that is
 * not a multiple of 24, a record type of another scope kind, an unknown id.
 * `allowRemoves` is false for snapshots; `cats` maps wire ids to benefit categories
 * (a wire id the rules held do not define is refused like any unknown id).
 */
export function decodeRecords(scope: string, buf: Uint8Array, allowRemoves = true, cats: CategoryTable = BUILT_IN_TABLE): DecodedRecords {
  const kind = scopeKind(scope);
  if (buf.length % RECORD_SIZE !== 0) throw invalid('record data is not a whole number of records', { bytes: buf.length });
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const entries: AnyEntry[] = [];
  const removes: string[] = [];
  let last: TransitEntry | null = null;
  for (let off = 0; off < b.length; off += RECORD_SIZE) {
    const token = b.toString('hex', off, off + 16);
    const tb = b[off + 16]!;
    const type = tb & 0x07;
    if (tb & F_REMOVE) {
      const want = kind === 'transit' ? T_CARD : kind === 'stoplist' ? T_STOP : T_SCHOOL;
      if (!allowRemoves || type !== want || tb & 0xf0) throw invalid('unexpected remove record', { index: off / RECORD_SIZE });
      removes.push(token);
      last = null;
      continue;
    }
    const a = b[off + 17]!;
    const from = b.readUInt16BE(off + 18);
    const to = b.readUInt16BE(off + 20);
    const last16 = b.readUInt16BE(off + 22);
    if (kind === 'transit') {
      if (type === T_CARD && tb === T_CARD && a === NO_CAT) {
        last = { token, cardExpiry: decMonth(last16), benefits: [] };
        entries.push(last);
        continue;
      }
      if (type !== T_BENEFIT || tb !== T_BENEFIT) throw invalid('record type does not belong to a transit list', { index: off / RECORD_SIZE });
      const cat = cats.fromWire(a);
      if (cat === undefined) throw invalid('unknown benefit category id', { id: a });
      const benefit = { category: cat, validFrom: decDate(from), validTo: decDate(to) };
      const exp = decMonth(last16);
      if (last && last.token === token && last.benefits.length > 0 && last.cardExpiry === exp) {
        if (last.benefits.length >= 8) throw invalid('more than 8 benefits for one card');
        last.benefits.push(benefit);
      } else {
        last = { token, cardExpiry: exp, benefits: [benefit] };
        entries.push(last);
      }
      continue;
    }
    if (kind === 'stoplist') {
      if (tb !== T_STOP) throw invalid('record type does not belong to a stop-list', { index: off / RECORD_SIZE });
      const reason = STOP_REASONS[a];
      if (reason === undefined) throw invalid('unknown stop reason id', { id: a });
      entries.push({ token, reason, since: decDate(from) });
      continue;
    }
    if (type !== T_SCHOOL) throw invalid('record type does not belong to a school list', { index: off / RECORD_SIZE });
    const mealId = tb >> 4;
    const meal = mealId === 0 ? null : MEAL_CATEGORIES[mealId - 1];
    if (meal === undefined) throw invalid('unknown meal category id', { id: mealId });
    const gradeBits = a & 0x1f;
    if ((a & 0x60) !== 0 || (gradeBits !== NO_GRADE && gradeBits > 12)) throw invalid('bad grade byte', { byte: a });
    entries.push({
      token,
      cardExpiry: decMonth(last16),
      role: SCHOOL_ROLES[a >> 7]!,
      grade: gradeBits === NO_GRADE ? null : gradeBits,
      mealCategory: meal,
      validFrom: decDate(from),
      validTo: decDate(to),
    });
  }
  return { entries, removes };
}
