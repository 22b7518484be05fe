import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRcError } from '../../protocol/errors.js';
import {
  Cmd,
  FRAME_OVERHEAD,
  FrameParser,
  MAX_PAYLOAD,
  MAX_TEXT_BYTES,
  crc16,
  decodeCommand,
  decodeEvent,
  encodeCommand,
  encodeEvent,
  encodeFrame,
  utf8Fit,
  type Frame,
  type HostCommand,
  type PeripheralEvent,
} from '../../device/io/protocols/rcp1.js';

const frameArb = fc.record({
  seq: fc.integer({ min: 0, max: 255 }),
  cmd: fc.integer({ min: 0, max: 255 }),
  payload: fc.uint8Array({ maxLength: MAX_PAYLOAD }),
});

/** Splits bytes into chunks at arbitrary points, as a UART delivers them. */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function parseAll(chunks: Buffer[]): Frame[] {
  const p = new FrameParser();
  const frames: Frame[] = [];
  for (const c of chunks) frames.push(...p.push(c));
  frames.push(...p.expire());
  expect(p.pending).toBe(0);
  return frames;
}

const norm = (f: Frame) => ({ seq: f.seq, cmd: f.cmd, payload: Buffer.from(f.payload).toString('hex') });

describe('rcp1 frame codec', () => {
  it('uses CRC-16/CCITT-FALSE (check value of "123456789" is 0x29B1)', () => {
    expect(crc16(Buffer.from('123456789', 'ascii'))).toBe(0x29b1);
  });

  it('lays a frame out as STX LEN SEQ CMD payload CRC16 ETX', () => {
    const b = encodeFrame({ seq: 7, cmd: Cmd.PING, payload: new Uint8Array(0) });
    expect([...b.subarray(0, 4)]).toEqual([0x02, 0, 7, Cmd.PING]);
    expect(b.readUInt16BE(4)).toBe(crc16(b, 1, 4));
    expect(b.at(-1)).toBe(0x03);
    expect(b.length).toBe(FRAME_OVERHEAD);
  });

  it('refuses to encode a payload over the maximum with io.bad-frame', () => {
    expect(() => encodeFrame({ seq: 1, cmd: 1, payload: new Uint8Array(MAX_PAYLOAD + 1) })).toThrowError(expect.objectContaining({ code: 'io.bad-frame' }));
    try {
      encodeFrame({ seq: 1, cmd: 1, payload: new Uint8Array(MAX_PAYLOAD + 1) });
    } catch (e) {
      expect(isRcError(e, 'io.bad-frame')).toBe(true);
    }
  });

  it('encode → decode round-trips any frame, however the bytes are chunked', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map(encodeFrame));
        expect(parseAll(chunked(bytes, cuts)).map(norm)).toEqual(frames.map(norm));
      }),
    );
  });

  it('random garbage never crashes the parser and keeps its buffer bounded', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
        const p = new FrameParser();
        for (const c of chunks) {
          p.push(c);
          expect(p.pending).toBeLessThanOrEqual(MAX_PAYLOAD + FRAME_OVERHEAD);
        }
        p.expire();
        expect(p.pending).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('resynchronises: frames between garbage are all found, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 40 }), frameArb), { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (pairs, tail, cuts) => {
          const bytes = Buffer.concat([...pairs.flatMap(([g, f]) => [Buffer.from(g), encodeFrame(f)]), Buffer.from(tail)]);
          const got = parseAll(chunked(bytes, cuts)).map(norm);
          // every real frame comes out, in order (garbage could in theory forge a frame: 2^-24 per try)
          const want = pairs.map(([, f]) => norm(f));
          let i = 0;
          for (const g of got) if (i < want.length && JSON.stringify(g) === JSON.stringify(want[i])) i++;
          expect(i).toBe(want.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects a frame with any single bit flipped (bad CRC, broken STX/LEN/ETX) and counts it', () => {
    fc.assert(
      fc.property(frameArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (f, pos, bit) => {
        const b = Buffer.from(encodeFrame(f));
        const i = pos % b.length;
        b[i] = (b[i] ?? 0) ^ (1 << bit);
        const p = new FrameParser();
        const got = [...p.push(b), ...p.expire()].map(norm);
        expect(got).not.toContainEqual(norm(f));
        expect(p.badFrames).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('finds a good frame right after a truncated one once the line goes quiet', () => {
    const good = encodeFrame({ seq: 9, cmd: Cmd.ACK, payload: new Uint8Array(0) });
    const cut = encodeFrame({ seq: 8, cmd: Cmd.SHOW, payload: new Uint8Array(100) }).subarray(0, 30);
    const p = new FrameParser();
    // the truncated frame's LEN claims 100 bytes, so the good frame is swallowed for now
    expect(p.push(Buffer.concat([cut, good]))).toEqual([]);
    expect(p.expire().map(norm)).toEqual([norm({ seq: 9, cmd: Cmd.ACK, payload: new Uint8Array(0) })]);
  });
});

const commandArb: fc.Arbitrary<HostCommand> = fc.oneof(
  fc.constant<HostCommand>({ type: 'ping' }),
  fc.record({
    type: fc.constant('open' as const),
    direction: fc.constantFrom('entry' as const, 'exit' as const),
    windowMs: fc.integer({ min: 0, max: 65535 }),
  }),
  fc.constant<HostCommand>({ type: 'close' }),
  fc.record({ type: fc.constant('free-passage' as const), on: fc.boolean() }),
  fc.record({
    type: fc.constant('show' as const),
    light: fc.constantFrom('green' as const, 'red' as const, 'off' as const),
    beep: fc.constantFrom('none' as const, 'short' as const, 'long' as const, 'double' as const, 'error' as const),
    text: fc.string({ unit: fc.constantFrom(...'Проезд льготный Benefit fare — 0 ₽\n'.split('')), maxLength: 60 }),
  }),
  fc.constant<HostCommand>({ type: 'clear' }),
);

const eventArb: fc.Arbitrary<PeripheralEvent> = fc.oneof(
  fc.record({ type: fc.constant('passed' as const), direction: fc.constantFrom('entry' as const, 'exit' as const) }),
  fc.record({ type: fc.constant('open-timeout' as const), direction: fc.constantFrom('entry' as const, 'exit' as const) }),
  fc.record({ type: fc.constant('tamper' as const), detail: fc.integer({ min: 0, max: 255 }) }),
  fc.constant<PeripheralEvent>({ type: 'boot' }),
);

describe('rcp1 commands and events', () => {
  it('produces the example frames of docs/serial-protocol.md §8 byte for byte', () => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase().match(/../g)?.join(' ');
    const cmd = (seq: number, c: HostCommand) => hex(encodeFrame({ seq, ...encodeCommand(c) }));
    const ev = (seq: number, e: PeripheralEvent) => hex(encodeFrame({ seq, ...encodeEvent(e) }));
    expect(cmd(1, { type: 'ping' })).toBe('02 00 01 01 EF 8C 03');
    expect(hex(encodeFrame({ seq: 1, cmd: Cmd.ACK, payload: new Uint8Array(0) }))).toBe('02 00 01 06 9F 6B 03');
    expect(cmd(17, { type: 'open', direction: 'entry', windowMs: 8000 })).toBe('02 03 11 20 01 1F 40 35 0C 03');
    expect(cmd(18, { type: 'show', light: 'green', beep: 'short', text: 'Проезд' })).toBe('02 0E 12 30 01 01 D0 9F D1 80 D0 BE D0 B5 D0 B7 D0 B4 17 C5 03');
    expect(ev(4, { type: 'passed', direction: 'entry' })).toBe('02 01 04 80 01 25 0D 03');
    expect(hex(encodeFrame({ seq: 17, cmd: Cmd.NAK, payload: Uint8Array.of(1) }))).toBe('02 01 11 15 01 6A 80 03');
    expect(ev(1, { type: 'boot' })).toBe('02 00 01 83 5E 46 03');
  });

  it('every host command round-trips through its frame', () => {
    fc.assert(
      fc.property(commandArb, fc.integer({ min: 0, max: 255 }), (c, seq) => {
        const { cmd, payload } = encodeCommand(c);
        const [f] = new FrameParser().push(encodeFrame({ seq, cmd, payload }));
        expect(f && decodeCommand(f)).toEqual(c);
      }),
    );
  });

  it('every controller event round-trips through its frame', () => {
    fc.assert(
      fc.property(eventArb, (e) => {
        const { cmd, payload } = encodeEvent(e);
        expect(decodeEvent({ seq: 1, cmd, payload })).toEqual(e);
      }),
    );
  });

  it('a malformed payload or unknown command decodes to nothing rather than throwing', () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        expect(() => decodeCommand(f)).not.toThrow();
        expect(() => decodeEvent(f)).not.toThrow();
      }),
    );
    expect(decodeCommand({ seq: 1, cmd: Cmd.OPEN, payload: Uint8Array.of(9, 0, 0) })).toBeUndefined();
    expect(decodeCommand({ seq: 1, cmd: Cmd.SHOW, payload: Uint8Array.of(1, 1, 0xd0) })).toBeUndefined(); // cut UTF-8
    expect(decodeCommand({ seq: 1, cmd: 0x7f, payload: new Uint8Array(0) })).toBeUndefined();
  });

  it('cuts a too-long Cyrillic text at a character boundary', () => {
    const text = 'Ж'.repeat(200); // 400 bytes
    const { bytes, truncated } = utf8Fit(text, MAX_TEXT_BYTES);
    expect(truncated).toBe(true);
    expect(bytes.length).toBe(MAX_TEXT_BYTES);
    expect(new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toBe('Ж'.repeat(MAX_TEXT_BYTES / 2));
    const odd = utf8Fit('Ж'.repeat(10), 5);
    expect(odd.bytes.toString('utf8')).toBe('ЖЖ');
  });
});
