import { ErrorCode, RcError } from '../../protocol/errors.js';

/**
 * Strict BER-TLV as EMV uses it (EMV Book 3 Annex B, ISO/IEC 7816-4):
 * - tags of 1..4 bytes (first byte xxx11111 → more bytes, each with bit 8 set but the last);
 * - lengths of 1..5 bytes: 00..7F, or 81/82/83/84 followed by 1..4 length bytes;
 *   indefinite (80) and 85.. are refused;
 * - bit 6 of the first tag byte marks a constructed object, whose value is parsed as TLVs;
 * - '00' and 'FF' bytes before, between or after data objects are padding and skipped
 *   (Annex B1); they are never accepted inside a tag or a length;
 * - objects nested deeper than MAX_TLV_DEPTH levels are refused (top level = 1);
 * - values are views (subarray) into the parsed buffer, never bytes outside it.
 *
 * Errors: only RcError card.tlv-malformed and card.tlv-too-deep, whose context
 * holds offsets and tags, never value bytes (a value may be a PAN).
 */

export const MAX_TLV_DEPTH = 8;
const MAX_TAG_BYTES = 4;

export interface Tlv {
  /** Upper-case hex, e.g. '9F38'. */
  tag: string;
  constructed: boolean;
  /** The value bytes: a view into the parsed buffer. */
  value: Uint8Array;
  /** Parsed children of a constructed object, [] for a primitive one. */
  children: Tlv[];
}

function malformed(message: string, context: Record<string, unknown>): RcError {
  return new RcError(ErrorCode.TlvMalformed, message, context);
}

function isPadding(b: number): boolean {
  return b === 0x00 || b === 0xff;
}

/** Parse a buffer holding zero or more TLVs (with padding allowed between them). */
export function parseTlv(buf: Uint8Array): Tlv[] {
  return parseLevel(buf, 0, buf.length, 1);
}

function parseLevel(buf: Uint8Array, start: number, end: number, depth: number): Tlv[] {
  if (depth > MAX_TLV_DEPTH && start < end) {
    throw new RcError(ErrorCode.TlvTooDeep, `TLV nested deeper than ${MAX_TLV_DEPTH} levels`, { offset: start, maxDepth: MAX_TLV_DEPTH });
  }
  const out: Tlv[] = [];
  let i = start;
  while (i < end) {
    const first = buf[i]!;
    if (isPadding(first)) {
      i++;
      continue;
    }
    // tag
    const tagStart = i;
    i++;
    if ((first & 0x1f) === 0x1f) {
      for (;;) {
        if (i >= end) throw malformed('TLV tag runs past the end of the data', { offset: tagStart });
        const b = buf[i]!;
        i++;
        if (i - tagStart > MAX_TAG_BYTES) throw malformed('TLV tag longer than 4 bytes', { offset: tagStart });
        if ((b & 0x80) === 0) break;
      }
    }
    const tag = hexOf(buf, tagStart, i);
    // length
    if (i >= end) throw malformed('TLV length missing', { offset: tagStart, tag });
    const l0 = buf[i]!;
    i++;
    let len: number;
    if (l0 < 0x80) {
      len = l0;
    } else {
      const n = l0 & 0x7f;
      if (n === 0 || n > 4) throw malformed('TLV length form not allowed', { offset: tagStart, tag, lengthByte: l0 });
      if (i + n > end) throw malformed('TLV length runs past the end of the data', { offset: tagStart, tag });
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + buf[i + k]!;
      i += n;
    }
    if (len > end - i) throw malformed('TLV value runs past the end of the data', { offset: tagStart, tag, length: len, available: end - i });
    const constructed = (first & 0x20) !== 0;
    const value = buf.subarray(i, i + len);
    const children = constructed ? parseLevel(buf, i, i + len, depth + 1) : [];
    out.push({ tag, constructed, value, children });
    i += len;
  }
  return out;
}

const HEX = '0123456789ABCDEF';
function hexOf(buf: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let k = start; k < end; k++) {
    const b = buf[k]!;
    s += HEX[b >> 4]! + HEX[b & 15]!;
  }
  return s;
}

/** Depth-first search for the first object with this tag (hex, any case). */
export function findTlv(tlvs: readonly Tlv[], tag: string): Tlv | undefined {
  const t = tag.toUpperCase();
  for (const x of tlvs) {
    if (x.tag === t) return x;
    if (x.children.length > 0) {
      const hit = findTlv(x.children, t);
      if (hit) return hit;
    }
  }
  return undefined;
}

/** Every object with this tag, depth-first, in order. */
export function findAllTlv(tlvs: readonly Tlv[], tag: string, into: Tlv[] = []): Tlv[] {
  const t = tag.toUpperCase();
  for (const x of tlvs) {
    if (x.tag === t) into.push(x);
    if (x.children.length > 0) findAllTlv(x.children, t, into);
  }
  return into;
}

/** A Data Object List entry (PDOL, CDOL…): a tag and the length the card wants. */
export interface DolEntry {
  tag: string;
  length: number;
}

/** Parse a DOL (tag + one length byte, repeated). No padding is allowed in a DOL. */
export function parseDol(buf: Uint8Array): DolEntry[] {
  const out: DolEntry[] = [];
  let i = 0;
  while (i < buf.length) {
    const start = i;
    const first = buf[i]!;
    if (isPadding(first)) throw malformed('DOL holds a padding byte where a tag belongs', { offset: i });
    i++;
    if ((first & 0x1f) === 0x1f) {
      for (;;) {
        if (i >= buf.length) throw malformed('DOL tag runs past the end', { offset: start });
        const b = buf[i]!;
        i++;
        if (i - start > MAX_TAG_BYTES) throw malformed('DOL tag longer than 4 bytes', { offset: start });
        if ((b & 0x80) === 0) break;
      }
    }
    if (i >= buf.length) throw malformed('DOL length missing', { offset: start });
    const length = buf[i]!;
    i++;
    if (length >= 0x80) throw malformed('DOL length not a single byte', { offset: start });
    out.push({ tag: hexOf(buf, start, i - 1), length });
  }
  return out;
}

// ---------------------------------------------------------------- encoder

/** What the encoder writes: a primitive (value) or a constructed object (children). */
export type TlvNode = { tag: string; value: Uint8Array } | { tag: string; children: TlvNode[] };

/** Check a tag's hex form and return its bytes; throws card.tlv-malformed. */
export function tagBytes(tag: string): Buffer {
  if (!/^(?:[0-9a-fA-F]{2}){1,4}$/.test(tag)) throw malformed('TLV tag must be 1 to 4 bytes of hex', { tag });
  const b = Buffer.from(tag, 'hex');
  const first = b[0]!;
  if (isPadding(first)) throw malformed('TLV tag cannot start with 00 or FF', { tag });
  const multi = (first & 0x1f) === 0x1f;
  if (!multi && b.length !== 1) throw malformed('single-byte TLV tag written with more bytes', { tag });
  if (multi) {
    if (b.length < 2) throw malformed('multi-byte TLV tag needs a subsequent byte', { tag });
    for (let k = 1; k < b.length; k++) {
      const last = k === b.length - 1;
      if (((b[k]! & 0x80) === 0) !== last) throw malformed('TLV tag subsequent bytes are wrongly marked', { tag });
    }
  }
  return b;
}

export function encodeLength(len: number): Buffer {
  if (!Number.isInteger(len) || len < 0 || len > 0xffffffff) throw malformed('TLV length out of range', { length: len });
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  let v = len;
  while (v > 0) {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encode one node. A constructed tag needs children, a primitive one a value. */
export function encodeTlvNode(node: TlvNode): Buffer {
  const t = tagBytes(node.tag);
  const constructed = (t[0]! & 0x20) !== 0;
  let value: Uint8Array;
  if ('children' in node) {
    if (!constructed) throw malformed('primitive TLV tag given children', { tag: node.tag });
    value = encodeTlv(node.children);
  } else {
    if (constructed) throw malformed('constructed TLV tag given a raw value', { tag: node.tag });
    value = node.value;
  }
  return Buffer.concat([t, encodeLength(value.length), value]);
}

export function encodeTlv(nodes: readonly TlvNode[]): Buffer {
  return Buffer.concat(nodes.map(encodeTlvNode));
}

/** Shorthands for building card answers: tlv('5A', bytes) / tlv('70', [children]). */
export function tlv(tag: string, v: Uint8Array | string | TlvNode[]): TlvNode {
  if (Array.isArray(v)) return { tag, children: v };
  return { tag, value: typeof v === 'string' ? Buffer.from(v, 'hex') : v };
}

/** Turn a parsed tree back into encoder nodes (used by tests and the trace tools). */
export function toNodes(tlvs: readonly Tlv[]): TlvNode[] {
  return tlvs.map((x) => (x.constructed ? { tag: x.tag, children: toNodes(x.children) } : { tag: x.tag, value: x.value }));
}
