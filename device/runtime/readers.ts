import type { Logger } from '../../protocol/log.js';
import type { Config } from '../config/schema.js';
import type { ReaderStatus } from './status.js';

/**
 * The card readers this runtime serves: the config names them (a name is also
 * a prefix: "Exit" serves "Exit 2"), or, without names, every reader that is
 * present or appears later. Each has a slot whose chain keeps its taps one at a
 * time.
 */

export function matchesReader(pattern: string, reader: string): boolean {
  return reader === pattern || reader.startsWith(pattern);
}

/** A reader's reported status plus the chain that keeps its taps one at a time. */
export interface ReaderSlot extends ReaderStatus {
  chain: Promise<void>;
}

export class ReaderSlots {
  private readonly slots = new Map<string, ReaderSlot>();

  constructor(
    private readonly config: () => Config,
    private readonly log: Logger,
  ) {}

  get(name: string): ReaderSlot | undefined {
    return this.slots.get(name);
  }

  all(): ReaderSlot[] {
    return [...this.slots.values()];
  }

  names(): string[] {
    return [...this.slots.keys()];
  }

  /** A card is being read on some reader. */
  busy(): boolean {
    return this.all().some((s) => s.state === 'reading');
  }

  /** The slot of a reader that is (again) present; null when the config does not name it. */
  add(name: string): ReaderSlot | null {
    const existing = this.slots.get(name);
    if (existing) {
      if (existing.state === 'removed') {
        existing.state = 'idle';
        this.log.info({ reader: name }, 'reader back');
      }
      return existing;
    }
    const list = this.config().readers;
    const rc = list && list.length > 0 ? list.find((r) => matchesReader(r.name, name)) : { direction: null };
    if (!rc) {
      this.log.info({ reader: name }, 'reader ignored: not named in the config');
      return null;
    }
    const direction = rc.direction ?? null;
    const slot: ReaderSlot = { name, direction, state: 'idle', cardPresent: false, taps: 0, lastError: null, chain: Promise.resolve() };
    this.slots.set(name, slot);
    this.log.info({ reader: name, direction }, 'reader in use');
    return slot;
  }

  removed(name: string): void {
    const s = this.slots.get(name);
    if (!s) return;
    s.state = 'removed';
    s.cardPresent = false;
    this.log.warn({ reader: name }, 'reader removed');
  }

  /** Every reader in use, then those the config names that were never seen ('absent'). */
  statuses(cardPresent: ReadonlyMap<string, boolean>): ReaderStatus[] {
    const names = this.names();
    return [
      ...this.all().map((s) => ({
        name: s.name,
        direction: s.direction,
        state: s.state,
        cardPresent: cardPresent.get(s.name) ?? s.cardPresent,
        taps: s.taps,
        lastError: s.lastError,
      })),
      ...(this.config().readers ?? [])
        .filter((rc) => !names.some((n) => matchesReader(rc.name, n)))
        .map((rc) => ({ name: rc.name, direction: rc.direction ?? null, state: 'absent' as const, cardPresent: false, taps: 0, lastError: null })),
    ];
  }
}
