/**
 * A virtual contactless card: the behaviour that both the vpcd connector
 * (real pcscd) and the in-process channel serve. Pure request/response,
 * no I/O: the transport decides what "removed" and "silent" mean.
 */
export type VCardAnswer =
  | { kind: 'response'; data: Uint8Array } // a response APDU (data + SW)
  | { kind: 'remove' } // the card leaves the field now (the vpcd socket closes)
  | { kind: 'silent' }; // the card does not answer this command

export interface VirtualCard {
  /** Answer To Reset, as the reader reports it. */
  atr(): Uint8Array;
  /** Called when the reader powers (or resets) the card: session state starts over. */
  powerOn(): void;
  /** Answer one command APDU. */
  transmit(apdu: Uint8Array): VCardAnswer;
}
