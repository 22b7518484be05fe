import { readFileSync } from 'node:fs';

/** The clocks a tap is stamped with (injected: the demo and tests script them). */
export interface Clock {
  /** Wall-clock time, epoch ms. */
  wallMs(): number;
  /** Monotonic time, ms (comparable only within one bootId). */
  monoMs(): number;
  bootId: string;
}

let bootId: string | undefined;

/** The kernel's boot id: the monotonic clock is comparable only within one boot. */
function currentBootId(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = `pid-${process.pid}-${Date.now()}`;
    }
  }
  return bootId;
}

export const systemClock: Clock = {
  wallMs: () => Date.now(),
  // CLOCK_MONOTONIC since boot: comparable across process restarts within one boot
  monoMs: () => Number(process.hrtime.bigint() / 1_000_000n),
  bootId: currentBootId(),
};
