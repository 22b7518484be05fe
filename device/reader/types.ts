import type { KeyedToken } from '../../protocol/token.js';

/**
 * The seams between the EMV logic and the hardware.
 *
 * The EMV read (`device/emv/`) sees only a CardChannel. Two implementations:
 * a PC/SC channel (real pcscd, `device/reader/pcsc.ts`) and an in-process
 * channel over a VirtualCard (`device/vcard/`), which is also what the vpcd
 * connector serves to the real daemon. One test suite runs over both.
 */

/** One powered card on one reader. */
export interface CardChannel {
  /** Send a command APDU, get the full response APDU (data + SW1 SW2). Throws RcError card.removed / card.timeout. */
  transmit(apdu: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
}

/** What a successful read of a Mir card yields. The PAN is NOT here: only the token and the masked PAN. */
export interface CardRead {
  scheme: CardScheme;
  aid: string; // hex, upper case
  maskedPan: string; // first 6, one '*' per hidden digit, last 4
  expiry: string; // YYYY-MM
  psn: string | null; // 2 hex digits or null
  par: string | null; // Payment Account Reference (tag 9F24), ASCII, or null
  token: string; // 32 hex digits, with the newest key version held
  keyVersion: number;
  /**
   * Only when the key source holds older versions too (a rotation under way): the card's token under every
   * version held, newest first (`tokens[0]` is `token`). The device looks each up in its lists in that order.
   */
  tokens?: readonly KeyedToken[];
  apdus: number; // APDUs exchanged
  ms: number; // wall time of the read
}

export type CardScheme = 'mir' | 'visa' | 'mastercard' | 'cb' | 'interac' | 'amex' | 'jcb' | 'unionpay' | 'unknown';

/** A reader as the device sees it (PC/SC reader or in-process virtual reader). */
export interface ReaderInfo {
  name: string;
  cardPresent: boolean;
}

/** Events a reader source emits. */
export type ReaderEvent =
  | { type: 'reader-added'; reader: string }
  | { type: 'reader-removed'; reader: string }
  | { type: 'card-inserted'; reader: string; atr: Uint8Array; channel: CardChannel }
  | { type: 'card-removed'; reader: string }
  | { type: 'service-down'; error: string }
  | { type: 'service-up' };

/**
 * A source of readers and cards: PC/SC (pcscd) or in-process virtual readers.
 * Never throws from its event loop; reports PC/SC loss as 'service-down' and
 * retries with backoff until close().
 */
export interface ReaderSource {
  start(): void;
  on(listener: (e: ReaderEvent) => void): () => void;
  readers(): ReaderInfo[];
  close(): Promise<void>;
}
