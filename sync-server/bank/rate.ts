/**
 * A token bucket per bank: `burst` requests at once, refilled at `perSecond`. In memory: a restart gives every
 * bank a full bucket, which is what a bank would get after a quiet second anyway.
 */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

export const DEFAULT_BANK_RATE: RateLimit = { perSecond: 5, burst: 20 };

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly limit: RateLimit,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Take one token for `key`: 0 when admitted, else the whole seconds until one is there (Retry-After). */
  take(key: string): number {
    const now = this.clock();
    const b = this.buckets.get(key) ?? { tokens: this.limit.burst, at: now };
    b.tokens = Math.min(this.limit.burst, b.tokens + ((now - b.at) / 1000) * this.limit.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.limit.perSecond));
  }
}
