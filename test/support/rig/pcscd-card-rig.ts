import { PcscReaderSource } from '../../../device/reader/pcsc.js';
import type { CardChannel } from '../../../device/reader/types.js';
import type { VCardSpec } from '../../../device/vcard/spec.js';
import { createLogger, type Logger } from '../../../protocol/log.js';
import type { CardRig } from '../../suites/card-rig.js';
import { nextEvent } from './events.js';
import { PcscdRig, type PcscdRigOptions } from './pcscd.js';
import { VcardHost, type HostCardSpec } from './vcards.js';

export interface PcscdCardRig extends CardRig {
  /** available after setup() */
  readonly pcscd: PcscdRig;
  readonly host: VcardHost;
  readonly source: PcscReaderSource;
  /** present on another slot than 0 (two readers) */
  presentOn(slot: number, spec: HostCardSpec): Promise<CardChannel>;
  removeFrom(slot: number): Promise<void>;
}

/**
 * The shared-suite rig through the real stack: a private pcscd (test/support/rig/pcscd.ts)
 * with vpcd, virtual cards served by a child process (test/support/rig/vcard-host.ts),
 * and the device's own PcscReaderSource handing out the channels.
 */
export function pcscdCardRig(opts: PcscdRigOptions & { log?: Logger } = {}): PcscdCardRig {
  let pcscd: PcscdRig | null = null;
  let host: VcardHost | null = null;
  let source: PcscReaderSource | null = null;
  const need = <T>(x: T | null): T => {
    if (!x) throw new Error('pcscd card rig: setup() first');
    return x;
  };

  async function removeFrom(slot: number): Promise<void> {
    const s = need(pcscd).slots[slot]!;
    const src = need(source);
    const present = src.readers().find((r) => r.name === s.readerName)?.cardPresent ?? false;
    const removed = present ? nextEvent(src, 'card-removed', (e) => e.reader === s.readerName) : null;
    await need(host).remove(s.port);
    await removed;
  }

  async function presentOn(slot: number, spec: HostCardSpec): Promise<CardChannel> {
    await removeFrom(slot);
    const s = need(pcscd).slots[slot]!;
    const inserted = nextEvent(need(source), 'card-inserted', (e) => e.reader === s.readerName);
    await need(host).insert(s.port, spec);
    return (await inserted).channel;
  }

  return {
    name: 'pcscd+vpcd',
    get pcscd() {
      return need(pcscd);
    },
    get host() {
      return need(host);
    },
    get source() {
      return need(source);
    },
    async setup() {
      pcscd = await PcscdRig.create(opts);
      pcscd.useAsClient();
      host = await VcardHost.start();
      source = await PcscReaderSource.create({ log: opts.log ?? createLogger({ level: 'warn' }), backoffMaxMs: 1000 });
      const last = pcscd.slots[pcscd.slots.length - 1]!.readerName;
      const added = nextEvent(source, 'reader-added', (e) => e.reader === last);
      source.start();
      await added;
    },
    async teardown() {
      await source?.close();
      await host?.close();
      await pcscd?.dispose();
      source = null;
      host = null;
      pcscd = null;
    },
    present: (spec: VCardSpec) => presentOn(0, spec),
    remove: () => (source ? removeFrom(0) : Promise.resolve()),
    presentOn,
    removeFrom,
  };
}
