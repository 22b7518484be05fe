import type { VCardFaults } from './spec.js';
import type { VCardAnswer, VirtualCard } from './types.js';
import { splitApdu } from './emv-card.js';

/**
 * Wrap a card with faults. APDUs are counted from 1 after each powerOn,
 * GET RESPONSE and repeated commands included.
 */
export function withFaults(card: VirtualCard, faults: VCardFaults): VirtualCard {
  let n = 0;
  let pending: Buffer | null = null; // data waiting for GET RESPONSE

  const swOnly = (hi: number, lo: number): VCardAnswer => ({ kind: 'response', data: Buffer.from([hi, lo]) });

  function transform(index: number, apdu: Uint8Array, a: VCardAnswer): VCardAnswer {
    if (a.kind !== 'response' || a.data.length < 2) return a;
    let data = Buffer.from(a.data.subarray(0, a.data.length - 2));
    const sw = Buffer.from(a.data.subarray(a.data.length - 2));
    if (faults.truncateAt === index && data.length > 0) data = Buffer.from(data.subarray(0, Math.floor(data.length / 2)));
    if (faults.garbleTlvAt === index && data.length >= 2) {
      data = Buffer.from(data);
      // the outer object now claims more bytes than there are (or an illegal length form)
      data[1] = data[1]! < 0x7f && data.length - 2 < 0x7f ? 0x7f : 0x85;
    }
    if (faults.needGetResponse && data.length > 0) {
      pending = Buffer.concat([data, sw]);
      return swOnly(0x61, data.length & 0xff);
    }
    if (faults.wrongLe && data.length > 0 && data.length <= 0xff) {
      const { le } = splitApdu(apdu);
      if (le !== data.length) return swOnly(0x6c, data.length);
    }
    return { kind: 'response', data: Buffer.concat([data, sw]) };
  }

  return {
    atr: () => card.atr(),
    powerOn() {
      n = 0;
      pending = null;
      card.powerOn();
    },
    transmit(apdu: Uint8Array): VCardAnswer {
      n++;
      if (faults.removeAfterApdus !== undefined && n > faults.removeAfterApdus) return { kind: 'remove' };
      if (faults.silentAt === n) return { kind: 'silent' };
      if (faults.statusWordAt && faults.statusWordAt.apdu === n) {
        const s = Buffer.from(faults.statusWordAt.sw, 'hex');
        return swOnly(s[0]!, s[1]!);
      }
      if (faults.needGetResponse && apdu.length >= 4 && apdu[0] === 0x00 && apdu[1] === 0xc0) {
        if (!pending) return swOnly(0x69, 0x85);
        const le = apdu.length >= 5 ? apdu[4]! || 256 : 256;
        const body = pending.subarray(0, pending.length - 2);
        if (le < body.length) {
          const part = body.subarray(0, le);
          pending = Buffer.concat([body.subarray(le), pending.subarray(pending.length - 2)]);
          return { kind: 'response', data: Buffer.concat([part, Buffer.from([0x61, (body.length - le) & 0xff])]) };
        }
        const all = pending;
        pending = null;
        return { kind: 'response', data: all };
      }
      pending = null;
      return transform(n, apdu, card.transmit(apdu));
    },
  };
}
