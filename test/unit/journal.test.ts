import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../device/config/load.js';
import type { Tap } from '../../protocol/rules/types.js';
import { processTap } from '../../device/runtime/process-tap.js';
import { Store } from '../../device/store/index.js';
import { expectRcError } from '../support/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-journal-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cfg = loadConfigFile('test/fixtures/decide/bus.config.json');
const T0 = Date.parse('2026-11-24T08:00:00+03:00');
let n = 0;
const tap = (i: number, token = 'ffffffffffffffffffffffffffffffff'): Tap => ({
  wallTime: T0 + i * 600_000,
  monotonicMs: i * 600_000,
  bootId: 'b',
  direction: null,
  card: { token, expiry: null },
});
function fresh(): { s: Store; path: string } {
  const path = join(dir, `j${n++}.db`);
  return { s: Store.open(path, { deviceId: 'bus-9', synchronous: 'OFF' }), path };
}

describe('journal', () => {
  it('every decision, allowed or denied, is an entry with seq, time, device, token, result, reason, fare, benefit, list versions', () => {
    const { s } = fresh();
    s.applySnapshot({ scope: 'stoplist', version: 7, entries: [{ token: '44444444444444444444444444444444', reason: 'lost', since: '2026-01-01' }] });
    processTap(s, tap(0), cfg);
    processTap(s, tap(1, '44444444444444444444444444444444'), cfg);
    const [a, b] = s.journalRange(1, 10);
    expect(a).toMatchObject({
      seq: 1,
      time: '2026-11-24T05:00:00.000Z',
      device: 'bus-9',
      token: 'ffffffffffffffffffffffffffffffff',
      kind: 'bus',
      result: 'allow',
      reason: 'full-fare',
      fareKopecks: 3500,
      benefit: null,
      listVersions: { stoplist: 7 },
      route: '7',
      vehicle: 'A123',
    });
    expect(a!.flags).toContain('deferred-charge');
    expect(b).toMatchObject({ seq: 2, result: 'deny', reason: 'stop-list', fareKopecks: 0 });
    s.close();
  });

  it('range, ack, backlog and prune', () => {
    const { s } = fresh();
    for (let i = 0; i < 10; i++) processTap(s, tap(i), cfg);
    expect(s.journalRange(4, 3).map((e) => e.seq)).toEqual([4, 5, 6]);
    expect(s.journalBacklog()).toBe(10);
    s.ackUpTo(6);
    expect(s.journalBacklog()).toBe(4);
    s.ackUpTo(3); // an older ack never moves it back
    expect(s.ackedSeq()).toBe(6);
    // only acknowledged entries older than the retention go
    expect(s.pruneAcked(T0 + 4 * 600_000)).toBe(4);
    expect(s.journalRange(0, 100).map((e) => e.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(s.pruneAcked(new Date(T0 + 100 * 600_000))).toBe(2);
    expect(s.journalRange(0, 100)[0]!.seq).toBe(7);
    s.close();
  });

  it('after everything is acknowledged and pruned, a reopened store continues the sequence (never reuses a seq)', () => {
    const { s, path } = fresh();
    for (let i = 0; i < 3; i++) processTap(s, tap(i), cfg);
    s.ackUpTo(3);
    expect(s.pruneAcked(T0 + 1e12)).toBe(3);
    s.close();
    const r = Store.open(path, { deviceId: 'bus-9', synchronous: 'OFF' });
    expect(r.lastSeq()).toBe(3);
    expect(processTap(r, tap(10), cfg).entry.seq).toBe(4);
    r.close();
  });

  it('an ack beyond the last entry is store.journal-ack-invalid and changes nothing', () => {
    const { s } = fresh();
    processTap(s, tap(0), cfg);
    expectRcError(() => s.ackUpTo(5), 'store.journal-ack-invalid');
    expect(s.ackedSeq()).toBe(0);
    s.close();
  });

  it('a non-decision event (turnstile not passed) takes the next seq', () => {
    const { s } = fresh();
    processTap(s, tap(0), cfg);
    const e = s.appendEvent({ wallTime: T0, token: 'ffffffffffffffffffffffffffffffff', kind: 'turnstile', reason: 'not-passed', direction: 'entry' });
    expect(e).toMatchObject({ seq: 2, result: 'event', reason: 'not-passed', direction: 'entry' });
    s.close();
  });

  it('property: sequence numbers have no gaps and are never reused, across acks, prunes and reopens', () => {
    const op = fc.oneof(
      fc.record({
        k: fc.constant('tap' as const),
        token: fc.constantFrom('ffffffffffffffffffffffffffffffff', '11111111111111111111111111111111', '44444444444444444444444444444444'),
      }),
      fc.record({ k: fc.constant('ack' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ k: fc.constant('prune' as const) }),
      fc.record({ k: fc.constant('reopen' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        let { s, path } = fresh();
        let taps = 0;
        try {
          for (const o of ops) {
            if (o.k === 'tap') {
              const seq = processTap(s, tap(taps, o.token), cfg).entry.seq;
              taps++;
              expect(seq).toBe(taps);
            } else if (o.k === 'ack') s.ackUpTo(Math.floor(o.frac * s.lastSeq()));
            else if (o.k === 'prune') s.pruneAcked(T0 + 1e12);
            else {
              s.close();
              s = Store.open(path, { deviceId: 'bus-9', synchronous: 'OFF' });
            }
            const seqs = s.journalRange(0, 1000).map((e) => e.seq);
            expect(s.lastSeq()).toBe(taps);
            // what remains is contiguous, ends at the last seq and starts right after something acknowledged
            seqs.forEach((q, i) => expect(q).toBe(seqs[0]! + i));
            if (seqs.length) expect(seqs[seqs.length - 1]).toBe(taps);
            expect(seqs.length === 0 ? taps : seqs[0]! - 1).toBeLessThanOrEqual(s.ackedSeq());
          }
        } finally {
          s.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
