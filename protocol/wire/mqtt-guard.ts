import { Duplex } from 'node:stream';
import { MAX_LIST_MESSAGE } from './messages.js';

/**
 * MQTT packet size limits enforced on the byte stream, before any MQTT parser
 * buffers a packet. An MQTT fixed header announces the packet's length up
 * front (up to 256 MiB): a parser that trusts it allocates that much for a
 * peer that has sent five bytes. aedes and mqtt.js (MQTT 3.1.1) have no limit
 * of their own, so both ends of our links put this guard between the socket
 * and the parser.
 *
 * - Before the peer is authenticated only a CONNECT of at most
 *   `MAX_CONNECT_PACKET` bytes may come (the first packet must be CONNECT).
 * - After, every packet is bounded by the limit given to `authenticated()`
 *   (or the guard's `maxPacket` from the start, on a client's side).
 * A packet over the limit destroys the connection; nothing of it is handed on.
 */

/** A CONNECT holds a client id, a will (our status message), a user name and a password: 64 KiB is ample. */
export const MAX_CONNECT_PACKET = 64 * 1024;
/** Largest packet a list message needs: the list itself plus the topic and headers. */
export const MAX_MQTT_PACKET = MAX_LIST_MESSAGE + 64 * 1024;

const CONNECT = 1;

export interface PacketLimits {
  /** Limit for the first packet, which must be a CONNECT (server side); null on a client's side. */
  connect: number | null;
  /** Limit for every packet after the peer is authenticated (or from the start, without `connect`). */
  packet: number;
}

/** Why a stream was refused, for logs and tests. */
export interface GuardRefusal {
  reason: 'too-large' | 'not-connect' | 'bad-length';
  packetType: number;
  announced: number;
  limit: number;
}

/**
 * Incremental scanner of MQTT fixed headers: feed it bytes in any slicing;
 * it tells of the first packet that breaks the limits. Pure: no I/O.
 */
export class PacketScanner {
  private remaining = 0; // bytes of the current packet's body still to skip
  private header: number[] = []; // fixed-header bytes read so far
  private packets = 0;
  private limit: number;

  constructor(private readonly limits: PacketLimits) {
    this.limit = limits.connect ?? limits.packet;
  }

  /** After authentication, the per-packet limit becomes `limits.packet`. */
  authenticated(): void {
    this.limit = this.limits.packet;
  }

  /** Scan one slice; returns a refusal, or null when everything so far is within the limits. */
  feed(buf: Uint8Array): GuardRefusal | null {
    let i = 0;
    while (i < buf.length) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, buf.length - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      this.header.push(buf[i++]!);
      if (this.header.length === 1) continue;
      const last = this.header[this.header.length - 1]!;
      if (last & 0x80) {
        if (this.header.length === 5) return { reason: 'bad-length', packetType: this.header[0]! >> 4, announced: -1, limit: this.limit };
        continue;
      }
      let len = 0;
      for (let k = this.header.length - 1; k >= 1; k--) len = len * 128 + (this.header[k]! & 0x7f);
      const type = this.header[0]! >> 4;
      const total = len + this.header.length;
      if (this.packets === 0 && this.limits.connect !== null && type !== CONNECT)
        return { reason: 'not-connect', packetType: type, announced: total, limit: this.limit };
      if (total > this.limit) return { reason: 'too-large', packetType: type, announced: total, limit: this.limit };
      this.packets++;
      this.header = [];
      this.remaining = len;
    }
    return null;
  }
}

/**
 * A duplex that sits between a socket and an MQTT parser (aedes.handle, or an
 * mqtt.js stream builder): bytes in are scanned and passed on, bytes out go
 * straight to the socket. On a refusal the socket is destroyed and `onRefuse`
 * is told.
 */
export class GuardedStream extends Duplex {
  private readonly scanner: PacketScanner;
  private refused = false;

  constructor(
    private readonly sock: Duplex,
    limits: PacketLimits,
    private readonly onRefuse: (r: GuardRefusal) => void = () => {},
  ) {
    super({ allowHalfOpen: false });
    this.scanner = new PacketScanner(limits);
    sock.on('data', (chunk: Buffer) => {
      if (this.refused) return;
      const r = this.scanner.feed(chunk);
      if (r) {
        this.refused = true;
        this.onRefuse(r);
        sock.destroy();
        this.destroy();
        return;
      }
      if (!this.push(chunk)) sock.pause();
    });
    sock.on('end', () => this.push(null));
    sock.on('close', () => this.destroy());
    sock.on('error', (e) => this.destroy(e));
  }

  /** The peer proved who it is: packets up to `limits.packet` are allowed from now on. */
  authenticated(): void {
    this.scanner.authenticated();
  }

  override _read(): void {
    this.sock.resume();
  }

  override _write(chunk: Buffer, enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.sock.destroyed) return cb();
    this.sock.write(chunk, enc, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.sock.end(cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.sock.destroyed) this.sock.destroy();
    cb(err);
  }
}
