import type { VirtualCard } from '../../../device/vcard/types.js';

/**
 * A trivial card for rig tests (no EMV): answers every command with the
 * command bytes followed by 9000. INS EE makes it leave the field, INS DD
 * gets no answer. Its spec in the vcard host is {"kind":"rig-echo"}.
 */
export function echoCard(): VirtualCard {
  return {
    atr: () => Uint8Array.from([0x3b, 0x80, 0x80, 0x01, 0x01]),
    powerOn: () => {},
    transmit: (apdu) => {
      if (apdu[1] === 0xee) return { kind: 'remove' };
      if (apdu[1] === 0xdd) return { kind: 'silent' };
      const out = new Uint8Array(apdu.length + 2);
      out.set(apdu);
      out[apdu.length] = 0x90;
      out[apdu.length + 1] = 0x00;
      return { kind: 'response', data: out };
    },
  };
}
