import type { ReaderEvent, ReaderSource } from '../../../device/reader/types.js';

/** Resolve with the next event of `source` that matches `pred` (reject after timeoutMs). */
export function nextEvent<T extends ReaderEvent['type']>(
  source: ReaderSource,
  type: T,
  pred: (e: Extract<ReaderEvent, { type: T }>) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<Extract<ReaderEvent, { type: T }>> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = source.on((e) => {
      if (e.type !== type) return;
      const ev = e as Extract<ReaderEvent, { type: T }>;
      if (!pred(ev)) return;
      clearTimeout(t);
      off();
      resolve(ev);
    });
  });
}
