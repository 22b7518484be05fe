import { describe, expect, it } from 'vitest';
import { TokenBuckets } from '../../sync-server/bank/rate.js';

describe('bank rate limit (token bucket per bank)', () => {
  it('admits a burst, then answers the seconds until a token is back; refills at the rate; banks do not share a bucket', () => {
    let now = 1_000_000;
    const b = new TokenBuckets({ perSecond: 2, burst: 3 }, () => now);
    expect([b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 0]);
    expect(b.take('a')).toBe(1);
    expect(b.take('b')).toBe(0);
    now += 500; // one token back
    expect(b.take('a')).toBe(0);
    expect(b.take('a')).toBe(1);
    now += 60_000; // never more than the burst
    expect([b.take('a'), b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 0, 1]);
  });

  it('a slow rate asks for a longer wait', () => {
    const b = new TokenBuckets({ perSecond: 0.1, burst: 1 }, () => 0);
    expect(b.take('a')).toBe(0);
    expect(b.take('a')).toBe(10);
  });
});
