import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { CardChannel, ReaderSource } from './types.js';

export interface WaitForCardOptions {
  /** Reader name, or a unique case-insensitive part of it; default: the first reader. */
  reader?: string | undefined;
  timeoutMs: number;
  /** Fail with reader.pcsc-unavailable if pcscd is not there at the start (a one-shot command); otherwise keep waiting. */
  failIfUnavailable?: boolean;
}

export interface PresentedCard {
  reader: string;
  atr: Uint8Array;
  channel: CardChannel;
}

/** Pick the reader `wanted` names among `names`: exact, else a unique case-insensitive part; no `wanted`: the first. */
export function pickReader(names: readonly string[], wanted: string | undefined): string | null {
  if (wanted === undefined) return names[0] ?? null;
  if (names.includes(wanted)) return wanted;
  const w = wanted.toLowerCase();
  const hits = names.filter((n) => n.toLowerCase().includes(w));
  return hits.length === 1 ? hits[0]! : null;
}

/**
 * Start `source` (if not yet) and wait for a card on the chosen reader.
 * Rejects with reader.timeout, reader.not-found (pcscd up but no such reader),
 * or reader.pcsc-unavailable (pcscd absent at the start, with failIfUnavailable).
 */
export function waitForCard(source: ReaderSource, opts: WaitForCardOptions): Promise<PresentedCard> {
  return new Promise<PresentedCard>((resolve, reject) => {
    let target: string | null = null;
    let sawUp = false;
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      off();
      f();
    };
    const choose = (): void => {
      sawUp = true;
      const names = source.readers().map((r) => r.name);
      target = pickReader(names, opts.reader);
      if (!target) {
        finish(() =>
          reject(
            new RcError(ErrorCode.ReaderNotFound, opts.reader === undefined ? 'no card reader is connected' : 'no such card reader', {
              reader: opts.reader ?? null,
              readers: names,
            }),
          ),
        );
      }
    };
    const timer = setTimeout(
      () => finish(() => reject(new RcError(ErrorCode.ReaderTimeout, 'no card was presented in time', { timeoutMs: opts.timeoutMs, reader: target }))),
      opts.timeoutMs,
    );
    const off = source.on((e) => {
      switch (e.type) {
        case 'service-down':
          if (!sawUp && opts.failIfUnavailable) {
            finish(() => reject(new RcError(ErrorCode.PcscUnavailable, 'the PC/SC service (pcscd) is not running', { reason: e.error })));
          }
          return;
        case 'service-up':
          choose();
          return;
        case 'card-inserted':
          if (target !== null && e.reader === target) finish(() => resolve({ reader: e.reader, atr: e.atr, channel: e.channel }));
          return;
        default:
          return;
      }
    });
    // already running: readers are known now
    if (source.readers().length > 0) choose();
    source.start();
  });
}
