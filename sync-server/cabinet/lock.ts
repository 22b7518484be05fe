/**
 * The connect lock (issue 15, security): five wrong card numbers within an hour lock connecting for an hour from the
 * fifth, per person and per client address (either locks). A wrong number is one that fails its own checks: length or
 * Luhn (card.bad-pan) or a malformed expiry (card.bad-expiry). A valid number is never "wrong" here: whether a bank knows
 * the card is not something the server can tell. In memory: a restart forgets the counts (an attacker cannot restart
 * the server). The clock is injected (tests).
 */
export interface ConnectLockOptions {
  failures: number;
  windowMs: number;
  lockMs: number;
}
export const DEFAULT_CONNECT_LOCK: ConnectLockOptions = { failures: 5, windowMs: 3600_000, lockMs: 3600_000 };

export class ConnectLock {
  private readonly fails = new Map<string, number[]>();
  private readonly until = new Map<string, number>();
  constructor(
    private readonly clock: () => number,
    private readonly o: ConnectLockOptions = DEFAULT_CONNECT_LOCK,
  ) {}

  /** Until when connecting is locked for this person or address (ms), or null. */
  lockedUntil(person: string, address: string): number | null {
    const now = this.clock();
    let max: number | null = null;
    for (const k of [`p:${person}`, `a:${address}`]) {
      const u = this.until.get(k);
      if (u === undefined) continue;
      if (u <= now) this.until.delete(k);
      else max = Math.max(max ?? 0, u);
    }
    return max;
  }

  failed(person: string, address: string): void {
    const now = this.clock();
    for (const k of [`p:${person}`, `a:${address}`]) {
      const l = [...(this.fails.get(k) ?? []).filter((t) => now - t < this.o.windowMs), now];
      if (l.length >= this.o.failures) {
        this.until.set(k, now + this.o.lockMs);
        this.fails.delete(k);
      } else this.fails.set(k, l);
    }
    if (this.fails.size > 100_000) for (const k of [...this.fails.keys()].slice(0, 10_000)) this.fails.delete(k);
  }
}
