import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { CardChannel } from '../reader/types.js';
import { createVirtualCard, type VCardSpec } from './spec.js';
import type { VirtualCard } from './types.js';

/**
 * A CardChannel straight onto a VirtualCard, no pcscd: the fast transport of
 * the shared EMV suite. A card that leaves the field (or is removed by the
 * test) fails this and every later transmit with card.removed; a silent card
 * fails after the timeout with card.timeout.
 */
export class InProcessChannel implements CardChannel {
  private removed = false;

  constructor(private readonly card: VirtualCard) {
    card.powerOn();
  }

  /** Take the card out of the field. */
  remove(): void {
    this.removed = true;
  }

  get isRemoved(): boolean {
    return this.removed;
  }

  async transmit(apdu: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.removed) throw new RcError(ErrorCode.CardRemoved, 'the card has left the field', { ins: apdu[1] });
    const a = this.card.transmit(Buffer.from(apdu));
    switch (a.kind) {
      case 'response':
        return Buffer.from(a.data); // a copy: the reader wipes what it gets
      case 'remove':
        this.removed = true;
        throw new RcError(ErrorCode.CardRemoved, 'the card has left the field', { ins: apdu[1] });
      case 'silent':
        await sleep(timeoutMs);
        throw new RcError(ErrorCode.CardTimeout, `the card did not answer within ${timeoutMs} ms`, { ins: apdu[1], timeoutMs });
    }
  }
}

/** Power a virtual card described by `spec` and return a channel to it. */
export function openInProcessCard(spec: VCardSpec): InProcessChannel {
  return new InProcessChannel(createVirtualCard(spec));
}
