import { connect, type Socket } from 'node:net';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { VirtualCard } from './types.js';

/**
 * Serves a VirtualCard to vpcd (the vsmartcard reader driver inside pcscd)
 * over TCP. The card side connects to vpcd's slot port; a connected socket is
 * a card in the field, a closed socket is a card removed.
 *
 * Frames both ways: 2-byte big-endian length, then the payload. From vpcd:
 *   1-byte payloads are control: 0 power off, 1 power on, 2 reset,
 *   4 get ATR (only this one is answered, with the ATR);
 *   longer payloads are command APDUs, answered with one response APDU.
 * The card's answers map as: response → a frame; remove → we close the
 * socket; silent → nothing is sent (vpcd and the PC/SC transmit wait).
 *
 * The frame is written in one write with TCP_NODELAY (no Nagle delay on our
 * side; pcscd's side needs the test rig's shim).
 */

export const VPCD_CONTROL = { off: 0, on: 1, reset: 2, atr: 4 } as const;

export interface VpcdConnectOptions {
  port: number;
  host?: string;
  /** Give up connecting after this long (vpcd not listening). Default 5000 ms. */
  connectTimeoutMs?: number;
}

export interface VpcdCardConnection {
  /** Take the card out of the field (closes the socket). */
  remove(): Promise<void>;
  /** Resolves when the connection ended, for whatever reason. */
  readonly closed: Promise<void>;
  /** APDUs answered so far (counts 'response' answers). */
  readonly apdus: number;
  /** Whether vpcd has powered the card. */
  readonly powered: boolean;
}

const MAX_FRAME = 0xffff;

function frame(payload: Uint8Array): Buffer {
  if (payload.length > MAX_FRAME) throw new RcError(ErrorCode.CardBadResponse, 'virtual card answer longer than a vpcd frame', { length: payload.length });
  const b = Buffer.allocUnsafe(2 + payload.length);
  b.writeUInt16BE(payload.length, 0);
  b.set(payload, 2);
  return b;
}

/** Connect a virtual card to vpcd and serve it until removed or the connection drops. */
export function connectVpcd(card: VirtualCard, opts: VpcdConnectOptions): Promise<VpcdCardConnection> {
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const sock: Socket = connect({ port: opts.port, host, noDelay: true });
    let buf: Buffer = Buffer.alloc(0);
    let apdus = 0;
    let powered = false;
    let connected = false;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new RcError(ErrorCode.PcscUnavailable, 'vpcd is not listening', { host, port: opts.port }));
    }, opts.connectTimeoutMs ?? 5000);

    const conn: VpcdCardConnection = {
      remove: async () => {
        if (!sock.destroyed) sock.destroy();
        await closed;
      },
      closed,
      get apdus() {
        return apdus;
      },
      get powered() {
        return powered;
      },
    };

    const onPayload = (p: Buffer): void => {
      if (p.length === 1) {
        switch (p[0]) {
          case VPCD_CONTROL.off:
            powered = false;
            return;
          case VPCD_CONTROL.on:
          case VPCD_CONTROL.reset:
            powered = true;
            card.powerOn();
            return;
          case VPCD_CONTROL.atr:
            sock.write(frame(card.atr()));
            return;
          default:
            return; // unknown control byte: ignored, as vpcd's own cards do
        }
      }
      if (p.length === 0) return;
      let answer;
      try {
        answer = card.transmit(new Uint8Array(p.buffer, p.byteOffset, p.length));
      } catch {
        // a card behaviour that throws is a card that went away
        sock.destroy();
        return;
      }
      switch (answer.kind) {
        case 'response':
          apdus++;
          sock.write(frame(answer.data));
          return;
        case 'remove':
          sock.destroy();
          return;
        case 'silent':
          return;
      }
    };

    sock.on('connect', () => {
      connected = true;
      clearTimeout(timer);
      sock.setNoDelay(true);
      resolve(conn);
    });
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const payload = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        onPayload(payload);
        if (sock.destroyed) return;
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (!connected) {
        clearTimeout(timer);
        reject(new RcError(ErrorCode.PcscUnavailable, 'cannot connect to vpcd', { host, port: opts.port, reason: e.code ?? e.message }));
      }
    });
    sock.on('close', () => {
      clearTimeout(timer);
      powered = false;
      resolveClosed();
    });
  });
}
