import type { CardChannel } from '../../device/reader/types.js';
import type { VCardSpec } from '../../device/vcard/spec.js';

/**
 * A way to present virtual cards to the EMV read: in-process (no pcscd) or
 * through the real pcscd + vpcd. The shared suite (card-read.suite.ts) runs
 * unchanged over every rig.
 */
export interface CardRig {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** present a card described by spec and return a channel to it (the card is powered) */
  present(spec: VCardSpec): Promise<CardChannel>;
  /** take the card away; resolves when the reader has noticed (a no-op when no card is present) */
  remove(): Promise<void>;
}
