import type { Logger } from '../../protocol/log.js';
import { isDisplay, isTurnstile, type Display, type DisplayMessage, type Peripheral, type Turnstile } from '../io/types.js';
import { matchesReader } from './readers.js';
import type { RuntimeStatus } from './status.js';

/**
 * Which peripheral answers for which reader: a peripheral bound to a reader
 * (name or prefix) gets only that reader's signals; an unbound one gets all.
 * A peripheral that fails is logged and reported in its health; it never stops
 * a tap.
 */

export interface RuntimePeripheral {
  peripheral: Peripheral;
  /** The reader (name or prefix) this peripheral answers for; all readers when absent. */
  reader?: string;
}

export class PeripheralRouter {
  constructor(
    private readonly list: readonly RuntimePeripheral[],
    private readonly log: Logger,
  ) {}

  names(): string[] {
    return this.list.map((p) => p.peripheral.name);
  }

  /** Start every peripheral (a failure is logged, not thrown); returns the health subscriptions to undo. */
  async start(): Promise<(() => void)[]> {
    const unsubs: (() => void)[] = [];
    for (const { peripheral: p } of this.list) {
      unsubs.push(
        p.onHealth((h) => {
          const fields = { peripheral: p.name, status: h.status, portOpen: h.portOpen, code: h.lastError?.code };
          if (h.status === 'ok') this.log.info(fields, 'peripheral healthy again');
          else this.log.warn(fields, `peripheral ${h.status}; taps are still decided and journaled`);
        }),
      );
      try {
        await p.start();
      } catch (e) {
        this.log.error({ peripheral: p.name, err: String(e) }, 'peripheral failed to start; continuing without it');
      }
    }
    return unsubs;
  }

  /** Stop every peripheral (a gate closes unless in free passage). */
  async stop(): Promise<void> {
    for (const { peripheral: p } of this.list) {
      await p.stop().catch((e: unknown) => this.log.warn({ peripheral: p.name, err: String(e) }, 'peripheral stop failed'));
    }
  }

  /** The gates for a reader (null: every gate). */
  turnstiles(reader: string | null): Turnstile[] {
    return this.list
      .filter((x) => reader === null || x.reader === undefined || matchesReader(x.reader, reader))
      .map((x) => x.peripheral)
      .filter(isTurnstile);
  }

  displays(reader: string): Display[] {
    return this.list
      .filter((x) => x.reader === undefined || matchesReader(x.reader, reader))
      .map((x) => x.peripheral)
      .filter(isDisplay);
  }

  /** Show a message on every display of a reader; a failing display is logged. */
  async show(reader: string, msg: DisplayMessage): Promise<void> {
    await Promise.all(
      this.displays(reader).map((d) =>
        d.show(msg).catch((e: unknown) => {
          this.log.warn({ peripheral: d.name, err: String(e) }, 'display command failed');
          return false;
        }),
      ),
    );
  }

  statuses(): RuntimeStatus['peripherals'] {
    return this.list.map(({ peripheral: p, reader }) => ({
      name: p.name,
      kind: p.kind,
      protocol: p.protocol,
      port: p.port,
      reader: reader ?? null,
      health: p.health(),
      ...(isTurnstile(p) ? { state: p.state } : {}),
    }));
  }
}
