import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { CardChannel } from '../reader/types.js';

/** A response APDU split into data and status word. `data` is owned by the session (wiped on close). */
export interface Response {
  data: Uint8Array;
  sw: number;
}

export function swHex(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, '0');
}

export function selectByName(name: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0xa4, 0x04, 0x00, name.length]), name, Buffer.from([0x00])]);
}

export function getProcessingOptions(pdolData: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from([0x83, pdolData.length]), pdolData]);
  return Buffer.concat([Buffer.from([0x80, 0xa8, 0x00, 0x00, body.length]), body, Buffer.from([0x00])]);
}

export function readRecord(sfi: number, record: number): Buffer {
  return Buffer.from([0x00, 0xb2, record, (sfi << 3) | 0x04, 0x00]);
}

export function getResponse(le: number): Buffer {
  return Buffer.from([0x00, 0xc0, 0x00, 0x00, le]);
}

/** The same command with its Le set to `le` (appended for a case 1/3 command). */
export function withLe(apdu: Uint8Array, le: number): Buffer {
  const hasLe = apdu.length === 5 || (apdu.length > 5 && apdu.length === 5 + apdu[4]! + 1);
  const body = hasLe ? apdu.subarray(0, apdu.length - 1) : apdu;
  return Buffer.concat([body, Buffer.from([le])]);
}

/**
 * One read's conversation with a card: counts every APDU (GET RESPONSE and
 * repeats included), bounds them, handles 61xx and 6Cxx transparently, turns
 * a too-short answer into card.removed, and keeps every response buffer so
 * `wipe()` can zero them (they may hold the PAN).
 */
export class ApduSession {
  count = 0;
  private readonly held: Uint8Array[] = [];

  constructor(
    private readonly ch: CardChannel,
    private readonly timeoutMs: number,
    private readonly maxApdus: number,
    private readonly onApdu?: (ins: number, sw: number, bytes: number) => void,
  ) {}

  private async exchange(apdu: Uint8Array): Promise<Uint8Array> {
    if (this.count >= this.maxApdus) {
      throw new RcError(ErrorCode.CardTooManyApdus, `card needed more than ${this.maxApdus} APDUs`, { maxApdus: this.maxApdus });
    }
    this.count++;
    let r: Uint8Array;
    try {
      r = await this.ch.transmit(apdu, this.timeoutMs);
    } catch (e) {
      if (isRcError(e)) throw e;
      throw new RcError(
        ErrorCode.ReaderTransmit,
        'the reader failed to exchange an APDU',
        { ins: apdu[1], reason: e instanceof Error ? e.message : String(e) },
        { cause: e },
      );
    }
    this.held.push(r);
    if (r.length < 2) throw new RcError(ErrorCode.CardRemoved, 'the card answered nothing (taken away?)', { ins: apdu[1], bytes: r.length });
    this.onApdu?.(apdu[1]!, (r[r.length - 2]! << 8) | r[r.length - 1]!, r.length - 2);
    return r;
  }

  async send(command: Uint8Array): Promise<Response> {
    let apdu = command;
    const chunks: Uint8Array[] = [];
    let repeated = false;
    for (;;) {
      const r = await this.exchange(apdu);
      const sw1 = r[r.length - 2]!;
      const sw2 = r[r.length - 1]!;
      const data = r.subarray(0, r.length - 2);
      if (sw1 === 0x61) {
        if (data.length > 0) chunks.push(data);
        apdu = getResponse(sw2);
        continue;
      }
      if (sw1 === 0x6c && !repeated && chunks.length === 0) {
        repeated = true;
        apdu = withLe(apdu, sw2);
        continue;
      }
      if (chunks.length === 0) return { data, sw: (sw1 << 8) | sw2 };
      chunks.push(data);
      const all = Buffer.concat(chunks);
      this.held.push(all);
      return { data: all, sw: (sw1 << 8) | sw2 };
    }
  }

  /** Zero every response buffer this session saw. */
  wipe(): void {
    for (const b of this.held) b.fill(0);
    this.held.length = 0;
  }
}
