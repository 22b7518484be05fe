import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { VirtualCard } from '../../device/vcard/types.js';
import { connectVpcd } from '../../device/vcard/vpcd.js';
import { isRcError } from '../../protocol/errors.js';
import { echoCard } from '../support/rig/echo-card.js';

// The vpcd connector against a stand-in for vpcd's side of the socket (a
// real TCP server speaking vpcd's framing, sending each frame in two writes
// as vpcd does): control bytes, ATR, APDUs split across segments, removal,
// silence.

let server: Server | null = null;

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
});

function fakeVpcd(): Promise<{ port: number; peer: Promise<Peer> }> {
  return new Promise((resolve) => {
    let give!: (p: Peer) => void;
    const peer = new Promise<Peer>((r) => (give = r));
    server = createServer((s) => give(new Peer(s)));
    server.listen(0, '127.0.0.1', () => {
      const a = server!.address();
      resolve({ port: typeof a === 'object' && a ? a.port : 0, peer });
    });
  });
}

class Peer {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  constructor(readonly s: Socket) {
    s.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiters.splice(0).forEach((w) => w());
    });
    s.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  /** send one frame the way vpcd does: length, then payload, in two writes */
  send(payload: number[]): void {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(payload.length);
    this.s.write(len);
    this.s.write(Buffer.from(payload));
  }
  async frame(timeoutMs = 2000): Promise<Buffer | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 2 && this.buf.length >= 2 + this.buf.readUInt16BE(0)) {
        const n = this.buf.readUInt16BE(0);
        const f = this.buf.subarray(2, 2 + n);
        this.buf = this.buf.subarray(2 + n);
        return f;
      }
      if (this.closed || Date.now() > deadline) return null;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
}

describe('vpcd connector (device/vcard/vpcd.ts)', () => {
  it('answers only the get-ATR control byte, powers the card on 1 and 2, and answers APDUs', async () => {
    const powered: number[] = [];
    const base = echoCard();
    const card: VirtualCard = { ...base, powerOn: () => powered.push(Date.now()) };
    const { port, peer } = await fakeVpcd();
    const conn = await connectVpcd(card, { port });
    const p = await peer;
    p.send([1]); // on
    p.send([2]); // reset
    p.send([0]); // off
    p.send([4]); // ATR
    expect((await p.frame())!.toString('hex')).toBe('3b80800101');
    expect(powered).toHaveLength(2);
    p.send([0x00, 0xb2, 0x01, 0x0c, 0x00]);
    expect((await p.frame())!.toString('hex')).toBe('00b2010c009000');
    expect(conn.apdus).toBe(1);
    await conn.remove();
    expect(p.closed || (await p.frame(500)) === null).toBe(true);
  });

  it('reassembles frames split and coalesced across TCP segments', async () => {
    const { port, peer } = await fakeVpcd();
    const conn = await connectVpcd(echoCard(), { port });
    const p = await peer;
    // two APDU frames in one write, the second split byte by byte
    const f1 = Buffer.from([0x00, 0x05, 0x00, 0xa4, 0x04, 0x00, 0x00]);
    const f2 = Buffer.from([0x00, 0x05, 0x80, 0xa8, 0x00, 0x00, 0x00]);
    p.s.write(Buffer.concat([f1, f2.subarray(0, 1)]));
    for (const b of f2.subarray(1)) p.s.write(Buffer.from([b]));
    expect((await p.frame())!.toString('hex')).toBe('00a40400009000');
    expect((await p.frame())!.toString('hex')).toBe('80a80000009000');
    await conn.remove();
  });

  it('a card that leaves the field closes the socket; a silent card sends nothing', async () => {
    const { port, peer } = await fakeVpcd();
    const conn = await connectVpcd(echoCard(), { port });
    const p = await peer;
    p.send([0x00, 0xdd, 0x00, 0x00, 0x00]); // silent
    expect(await p.frame(300)).toBeNull();
    expect(p.closed).toBe(false);
    p.send([0x00, 0xee, 0x00, 0x00, 0x00]); // leaves
    await conn.closed;
    expect(await p.frame(1000)).toBeNull();
    expect(p.closed).toBe(true);
  });

  it('vpcd not listening → reader.pcsc-unavailable, no crash', async () => {
    const { port } = await fakeVpcd();
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;
    const err = await connectVpcd(echoCard(), { port }).catch((e: unknown) => e);
    expect(isRcError(err, 'reader.pcsc-unavailable')).toBe(true);
  });
});
