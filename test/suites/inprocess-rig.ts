import type { CardChannel } from '../../device/reader/types.js';
import { openInProcessCard, type InProcessChannel } from '../../device/vcard/inprocess.js';
import type { VCardSpec } from '../../device/vcard/spec.js';
import type { CardRig } from './card-rig.js';

/** The rig without pcscd: the card behaviour answers on the same event loop. */
export function inProcessRig(): CardRig {
  let current: InProcessChannel | null = null;
  return {
    name: 'in-process',
    async setup() {},
    async teardown() {
      current?.remove();
      current = null;
    },
    async present(spec: VCardSpec): Promise<CardChannel> {
      current?.remove();
      current = openInProcessCard(spec);
      return current;
    },
    async remove() {
      current?.remove();
      current = null;
    },
  };
}
