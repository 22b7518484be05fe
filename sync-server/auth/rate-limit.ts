/**
 * Failed sign-ins, counted per user name and per client address over a sliding window (in memory: a
 * restart forgets them, which only helps whoever restarts the server). Past the limit a sign-in is
 * refused (auth.rate-limited, 429) before its password is even checked.
 */
export interface LoginLimits {
  windowMs: number;
  perUser: number;
  perAddress: number;
}
/** 5 failures for one name, 20 from one address (a console shared by a school's staff), per 15 minutes. */
export const DEFAULT_LOGIN_LIMITS: LoginLimits = { windowMs: 15 * 60_000, perUser: 5, perAddress: 20 };

export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  constructor(private readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS) {}

  private recent(key: string, now: number): number[] {
    const l = (this.failures.get(key) ?? []).filter((t) => now - t < this.limits.windowMs);
    if (l.length) this.failures.set(key, l);
    else this.failures.delete(key);
    return l;
  }

  /** True when a sign-in for `user` from `address` must be refused now. */
  blocked(user: string, address: string, now = Date.now()): boolean {
    return this.recent(`u:${user}`, now).length >= this.limits.perUser || this.recent(`a:${address}`, now).length >= this.limits.perAddress;
  }

  failed(user: string, address: string, now = Date.now()): void {
    for (const k of [`u:${user}`, `a:${address}`]) this.failures.set(k, [...this.recent(k, now), now]);
    // bounded memory: a flood of names drops the oldest keys
    if (this.failures.size > 100_000) for (const k of [...this.failures.keys()].slice(0, 10_000)) this.failures.delete(k);
  }

  succeeded(user: string): void {
    this.failures.delete(`u:${user}`);
  }
}
