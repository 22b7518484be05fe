import { InProcessChannel } from '../vcard/inprocess.js';
import { createVirtualCard, type VCardSpec } from '../vcard/spec.js';
import type { VirtualCard } from '../vcard/types.js';
import type { ReaderEvent, ReaderInfo, ReaderSource } from './types.js';

/**
 * An in-process ReaderSource over virtual cards: no pcscd, no hardware. The
 * demo and the runtime's unit tests use it; a test (or a person at the
 * keyboard) puts a card on a named reader with present() and takes it away
 * with remove(). Cards are served by the same VirtualCard behaviour the vpcd
 * connector serves to the real daemon.
 */
export class VirtualReaderSource implements ReaderSource {
  private readonly listeners = new Set<(e: ReaderEvent) => void>();
  private readonly slots = new Map<string, InProcessChannel | null>();
  private started = false;
  private closed = false;

  constructor(readerNames: readonly string[] = ['Virtual Reader 0']) {
    for (const n of readerNames) this.slots.set(n, null);
  }

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    for (const reader of this.slots.keys()) this.emit({ type: 'reader-added', reader });
  }

  on(listener: (e: ReaderEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readers(): ReaderInfo[] {
    return [...this.slots].map(([name, ch]) => ({ name, cardPresent: ch !== null && !ch.isRemoved }));
  }

  /** A reader plugged in while running. */
  addReader(name: string): void {
    if (this.slots.has(name) || this.closed) return;
    this.slots.set(name, null);
    if (this.started) this.emit({ type: 'reader-added', reader: name });
  }

  removeReader(name: string): void {
    if (!this.slots.has(name)) return;
    this.remove(name);
    this.slots.delete(name);
    if (this.started) this.emit({ type: 'reader-removed', reader: name });
  }

  /** Put a card on a reader (a card already there leaves first). Returns its channel. */
  present(reader: string, card: VCardSpec | VirtualCard): InProcessChannel {
    if (!this.slots.has(reader)) throw new Error(`no virtual reader "${reader}"`);
    if (!this.started) throw new Error('virtual reader source not started');
    this.remove(reader);
    const vc = 'transmit' in card ? card : createVirtualCard(card);
    const channel = new InProcessChannel(vc);
    this.slots.set(reader, channel);
    this.emit({ type: 'card-inserted', reader, atr: vc.atr(), channel });
    return channel;
  }

  /** Take the card off the reader (no-op when none). */
  remove(reader: string): void {
    const ch = this.slots.get(reader);
    if (!ch) return;
    ch.remove();
    this.slots.set(reader, null);
    this.emit({ type: 'card-removed', reader });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.slots.keys()) this.remove(r);
    this.listeners.clear();
  }

  private emit(e: ReaderEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a listener's failure is its own business; the source keeps serving the others
      }
    }
  }
}
