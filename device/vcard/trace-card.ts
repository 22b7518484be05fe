import type { TraceFile } from './spec.js';
import type { VCardAnswer, VirtualCard } from './types.js';
import { DEFAULT_ATR, splitApdu } from './emv-card.js';

/**
 * Replays a recorded trace. A command matches a recorded one by CLA INS P1 P2
 * and its data (Le ignored); GET PROCESSING OPTIONS (80 A8) matches by header
 * only, since its PDOL data holds a date and a random number. A command the
 * trace does not know answers 6D00.
 */
export function createTraceCard(trace: TraceFile): VirtualCard {
  const entries = trace.exchanges.map((x) => {
    const cmd = splitApdu(Buffer.from(x.command, 'hex'));
    return { key: keyOf(cmd.header, cmd.data), response: Buffer.from(x.response, 'hex') };
  });
  const byKey = new Map<string, Buffer>();
  for (const e of entries) if (!byKey.has(e.key)) byKey.set(e.key, e.response);
  const atr = Buffer.from(trace.atr ?? DEFAULT_ATR, 'hex');
  return {
    atr: () => Buffer.from(atr),
    powerOn() {},
    transmit(apdu: Uint8Array): VCardAnswer {
      if (apdu.length < 4) return { kind: 'response', data: Buffer.from([0x67, 0x00]) };
      const { header, data } = splitApdu(apdu);
      const hit = byKey.get(keyOf(header, data));
      return { kind: 'response', data: hit ? Buffer.from(hit) : Buffer.from([0x6d, 0x00]) };
    },
  };
}

function keyOf(header: Buffer, data: Buffer): string {
  const h = header.toString('hex').toUpperCase();
  if (header[0] === 0x80 && header[1] === 0xa8) return h;
  return `${h}:${data.toString('hex').toUpperCase()}`;
}
