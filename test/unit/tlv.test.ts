import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_TLV_DEPTH, encodeLength, encodeTlv, findAllTlv, findTlv, parseDol, parseTlv, toNodes, tlv, type Tlv, type TlvNode } from '../../device/emv/tlv.js';
import { RcError } from '../../protocol/errors.js';
import { expectRcError, rcErrorCodeOf } from '../support/errors.js';
import { TRACE_NAMES, tracePath } from '../suites/card-fixtures.js';
import { MIR_PAN } from '../support/pans.js';

const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function* walk(tlvs: readonly Tlv[]): Generator<Tlv> {
  for (const t of tlvs) {
    yield t;
    yield* walk(t.children);
  }
}

// ---- generators -----------------------------------------------------------
const tagArb = (constructed: boolean): fc.Arbitrary<string> => {
  const cbit = constructed ? 0x20 : 0;
  const single = fc
    .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 30 }))
    .map(([cls, num]) => (cls << 6) | cbit | num)
    .filter((b) => b !== 0x00 && b !== 0xff)
    .map((b) => Buffer.from([b]).toString('hex').toUpperCase());
  const multi = fc
    .integer({ min: 0, max: 3 })
    .map((cls) => (cls << 6) | cbit | 0x1f)
    .chain((first) =>
      fc.tuple(fc.array(fc.integer({ min: 0x80, max: 0xff }), { maxLength: 2 }), fc.integer({ min: 0x00, max: 0x7f })).map(([mid, last]) =>
        Buffer.from([first, ...mid, last])
          .toString('hex')
          .toUpperCase(),
      ),
    )
    .filter((t) => !t.startsWith('FF'));
  return fc.oneof(single, multi);
};

const nodeArb: fc.Arbitrary<TlvNode> = fc.letrec<{ node: TlvNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ tag: tagArb(false), value: fc.uint8Array({ maxLength: 300 }) }),
    fc.record({ tag: tagArb(true), children: fc.array(tie('node'), { maxLength: 4 }) }),
  ),
})).node;

function depthOf(n: TlvNode): number {
  return 'children' in n ? 1 + Math.max(0, ...n.children.map(depthOf)) : 1;
}

const normalise = (nodes: TlvNode[]): unknown =>
  nodes.map((n) => ('children' in n ? { tag: n.tag, children: normalise(n.children) } : { tag: n.tag, value: Buffer.from(n.value).toString('hex') }));

describe('BER-TLV parser properties', () => {
  it('on arbitrary bytes it returns or throws only card.tlv-malformed / card.tlv-too-deep', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const c = rcErrorCodeOf(() => parseTlv(bytes));
        expect([undefined, 'card.tlv-malformed', 'card.tlv-too-deep']).toContain(c);
      }),
      { numRuns: 3000 },
    );
  });

  it('on mutated valid encodings it throws only its coded errors', () => {
    fc.assert(
      fc.property(fc.array(nodeArb, { minLength: 1, maxLength: 3 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (nodes, pos, byte) => {
        const enc = Buffer.from(encodeTlv(nodes));
        if (enc.length > 0) enc[pos % enc.length] = byte;
        const c = rcErrorCodeOf(() => parseTlv(enc));
        expect([undefined, 'card.tlv-malformed', 'card.tlv-too-deep']).toContain(c);
      }),
      { numRuns: 2000 },
    );
  });

  it('never reads past the buffer: values of a parsed subarray stay inside it, sentinels untouched', () => {
    const SENT = 0xa5;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }),
          fc.array(nodeArb, { maxLength: 3 }).map((n) => new Uint8Array(encodeTlv(n))),
          // valid encodings cut short: the claimed lengths now reach past the end
          fc.array(nodeArb, { minLength: 1, maxLength: 3 }).chain((n) => {
            const e = encodeTlv(n);
            return fc.nat({ max: Math.max(0, e.length - 1) }).map((k) => new Uint8Array(e.subarray(0, k)));
          }),
        ),
        fc.integer({ min: 1, max: 40 }),
        (data, pad) => {
          const big = new Uint8Array(pad + data.length + pad).fill(SENT);
          big.set(data, pad);
          const view = big.subarray(pad, pad + data.length);
          let parsed: Tlv[];
          try {
            parsed = parseTlv(view);
          } catch (e) {
            expect(e).toBeInstanceOf(RcError);
            return;
          }
          for (const t of walk(parsed)) {
            expect(t.value.buffer).toBe(big.buffer);
            expect(t.value.byteOffset).toBeGreaterThanOrEqual(pad);
            expect(t.value.byteOffset + t.value.byteLength).toBeLessThanOrEqual(pad + data.length);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('decodes what the encoder writes: decode(encode(x)) == x', () => {
    fc.assert(
      fc.property(fc.array(nodeArb, { maxLength: 4 }), (nodes) => {
        fc.pre(nodes.every((n) => depthOf(n) <= MAX_TLV_DEPTH));
        const parsed = parseTlv(encodeTlv(nodes));
        expect(normalise(toNodes(parsed))).toEqual(normalise(nodes));
      }),
      { numRuns: 1500 },
    );
  });
});

describe('BER-TLV parser examples', () => {
  it('reads multi-byte tags and marks constructed objects', () => {
    const [t] = parseTlv(h('BF0C 05 9F4D 02 0B1E'));
    expect(t).toMatchObject({ tag: 'BF0C', constructed: true });
    expect(t!.children[0]).toMatchObject({ tag: '9F4D', constructed: false });
    expect(Buffer.from(t!.children[0]!.value).toString('hex')).toBe('0b1e');
  });

  it('reads lengths in the 81, 82, 83 and 84 forms', () => {
    for (const len of [0x7f, 0x80, 0xff, 0x100, 0x1_0000, 0x10_0000]) {
      const enc = encodeTlv([tlv('04', Buffer.alloc(len, 1))]);
      const [t] = parseTlv(enc);
      expect(t!.value.length).toBe(len);
    }
    expect(encodeLength(0x80).toString('hex')).toBe('8180');
    expect(encodeLength(0x1234).toString('hex')).toBe('821234');
    expect(encodeLength(0x123456).toString('hex')).toBe('83123456');
    expect(encodeLength(0x12345678).toString('hex')).toBe('8412345678');
    expect(parseTlv(h('04 84 00000001 AA'))[0]!.value.length).toBe(1);
  });

  it('refuses the indefinite length (80) and lengths over 4 bytes (85)', () => {
    expectRcError(() => parseTlv(h('70 80 5A01 11 0000')), 'card.tlv-malformed');
    expectRcError(() => parseTlv(h('04 85 0000000001 AA')), 'card.tlv-malformed');
  });

  it('refuses a value, a length or a tag that runs past the end', () => {
    expectRcError(() => parseTlv(h('5A 08 22001234')), 'card.tlv-malformed');
    expectRcError(() => parseTlv(h('5A 82 01')), 'card.tlv-malformed');
    expectRcError(() => parseTlv(h('9F')), 'card.tlv-malformed');
    expectRcError(() => parseTlv(h('9F 81')), 'card.tlv-malformed');
    expectRcError(() => parseTlv(h('5A')), 'card.tlv-malformed');
    // a child running past its parent's end even though the buffer goes on
    expectRcError(() => parseTlv(h('70 03 5A 05 11 22 33 44 55')), 'card.tlv-malformed');
  });

  it('refuses a tag longer than 4 bytes', () => {
    expectRcError(() => parseTlv(h('1F 81 82 83 04 00')), 'card.tlv-malformed');
    expect(parseTlv(h('1F 81 82 03 00'))[0]!.tag).toBe('1F818203');
  });

  it(`accepts ${MAX_TLV_DEPTH} levels of nesting and refuses one more with card.tlv-too-deep`, () => {
    const nest = (levels: number): TlvNode => (levels === 1 ? tlv('04', '01') : tlv('70', [nest(levels - 1)]));
    expect(() => parseTlv(encodeTlv([nest(MAX_TLV_DEPTH)]))).not.toThrow();
    expectRcError(() => parseTlv(encodeTlv([nest(MAX_TLV_DEPTH + 1)])), 'card.tlv-too-deep');
    // a deeply nested bomb of empty-looking templates is refused, not recursed without end
    const bomb = Buffer.concat([Buffer.alloc(2000).fill(0x70)]);
    for (let i = 1; i < bomb.length; i += 2) bomb[i] = 0x7f;
    expectRcError(() => parseTlv(bomb), ['card.tlv-malformed', 'card.tlv-too-deep']);
  });

  it('skips 00 and FF padding before, between and after objects', () => {
    const tl = parseTlv(h('00 70 0A 00 5A 02 1122 FF 5F34 01 01 00 FF 00'));
    expect(tl).toHaveLength(1);
    expect(tl[0]!.children.map((c) => c.tag)).toEqual(['5A', '5F34']);
    expect(parseTlv(h('0000FFFF'))).toEqual([]);
  });

  it('finds tags depth-first', () => {
    const tl = parseTlv(h('6F 10 84 02 AABB A5 0A BF0C 07 61 05 4F 03 A00000'));
    expect(Buffer.from(findTlv(tl, '4f')!.value).toString('hex')).toBe('a00000');
    expect(findAllTlv(tl, '61')).toHaveLength(1);
    expect(findTlv(tl, '5A')).toBeUndefined();
  });

  it('parses a DOL (tag + one length byte) and refuses padding or a missing length in it', () => {
    expect(parseDol(h('9F66 04 9F02 06 9A 03 9C 01'))).toEqual([
      { tag: '9F66', length: 4 },
      { tag: '9F02', length: 6 },
      { tag: '9A', length: 3 },
      { tag: '9C', length: 1 },
    ]);
    expectRcError(() => parseDol(h('9F66 04 00')), 'card.tlv-malformed');
    expectRcError(() => parseDol(h('9F66')), 'card.tlv-malformed');
    expectRcError(() => parseDol(h('9F')), 'card.tlv-malformed');
  });

  it('the encoder refuses bad tags and a tag of the wrong kind with a coded error', () => {
    expectRcError(() => encodeTlv([tlv('00', '01')]), 'card.tlv-malformed');
    expectRcError(() => encodeTlv([tlv('9F', '01')]), 'card.tlv-malformed');
    expectRcError(() => encodeTlv([tlv('5A01', '01')]), 'card.tlv-malformed');
    expectRcError(() => encodeTlv([tlv('70', '01')]), 'card.tlv-malformed');
    expectRcError(() => encodeTlv([tlv('5A', [])]), 'card.tlv-malformed');
  });

  it('errors name offsets and tags, never the value bytes', () => {
    try {
      parseTlv(h('70 0C 5A 08 2200123456789019 5F24 05 28'));
      expect.unreachable();
    } catch (e) {
      expect(JSON.stringify(e)).not.toContain(MIR_PAN);
      expect((e as RcError).message).not.toContain('2200');
    }
  });
});

describe('real card traces', () => {
  for (const name of TRACE_NAMES) {
    it(`every response of ${name} parses with the strict parser`, () => {
      const trace = JSON.parse(readFileSync(tracePath(name), 'utf8')) as { exchanges: { response: string }[] };
      let parsedSome = 0;
      for (const x of trace.exchanges) {
        const data = Buffer.from(x.response, 'hex').subarray(0, -2);
        if (data.length === 0) continue;
        const tl = parseTlv(data);
        expect(tl.length).toBeGreaterThan(0);
        // re-encoding what was parsed gives back the same bytes (no padding in these cards)
        expect(encodeTlv(toNodes(tl)).toString('hex')).toBe(data.toString('hex'));
        parsedSome++;
      }
      expect(parsedSome).toBeGreaterThan(0);
    });
  }
});
