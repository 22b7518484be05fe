import { describe, expect, it } from 'vitest';
import { deltaChain, missingChunks, planScope, planSync, type ScopeView } from '../../device/sync/planner.js';

const NOW = new Date('2026-11-24T09:00:00Z');
const FRESH = '2026-12-01T09:00:00Z';
const EXPIRED = '2026-11-24T08:59:59Z';

function manifest(version: number, deltas: [number, number][] = [], expiresAt = FRESH): ScopeView['manifest'] {
  return { version, expiresAt, deltas: deltas.map(([from, to]) => ({ from, to, sha256: '0'.repeat(64), records: 1 })) };
}

/** The deltas from → to, one version each: as the planner's chains and the buffer list them. */
function steps(from: number, to: number): { from: number; to: number }[] {
  return Array.from({ length: to - from }, (_, i) => ({ from: from + i, to: from + i + 1 }));
}

/** The same, as `manifest()` takes them. */
const deltas = (from: number, to: number): [number, number][] => steps(from, to).map((d) => [d.from, d.to]);

function view(v: Partial<ScopeView> & { held: number }): ScopeView {
  return { scope: 'transit', manifest: null, buffered: [], download: null, ...v };
}

describe('sync list planner', () => {
  it('without a manifest nothing is fetched', () => {
    expect(planScope(view({ held: 3 }), NOW)).toEqual({ scope: 'transit', apply: [], reaches: 3, discard: [], next: { kind: 'idle', reason: 'no-manifest' } });
  });

  it('a device holding the manifest version fetches nothing', () => {
    const p = planScope(
      view({
        held: 7,
        manifest: manifest(7, deltas(5, 7)),
      }),
      NOW,
    );
    expect(p.apply).toEqual([]);
    expect(p.next).toEqual({ kind: 'idle', reason: 'up-to-date' });
  });

  it('a manifest older than the list held is a rollback: nothing is fetched from it', () => {
    const p = planScope(view({ held: 7, manifest: manifest(5, [[4, 5]]) }), NOW);
    expect(p.next).toEqual({ kind: 'idle', reason: 'rollback' });
    expect(p.apply).toEqual([]);
  });

  it('when the manifest lists deltas from the held version, they are awaited in order (no snapshot)', () => {
    const p = planScope(
      view({
        held: 4,
        manifest: manifest(7, [
          [6, 7],
          [3, 4],
          [4, 5],
          [5, 6],
        ]),
      }),
      NOW,
    );
    expect(p.next).toEqual({
      kind: 'await-deltas',
      chain: steps(4, 7),
    });
  });

  it('a gap too old for the deltas kept (retention dropped the first) means a snapshot', () => {
    const p = planScope(
      view({
        held: 2,
        manifest: manifest(7, deltas(4, 7)),
      }),
      NOW,
    );
    expect(p.next).toEqual({ kind: 'snapshot', version: 7 });
  });

  it('a new device (nothing held) takes the snapshot when the deltas do not start at 0', () => {
    expect(planScope(view({ held: 0, manifest: manifest(3, [[2, 3]]) }), NOW).next).toEqual({ kind: 'snapshot', version: 3 });
  });

  it('deltas awaited for too long give way to the snapshot', () => {
    const p = planScope(
      view({
        held: 4,
        manifest: manifest(6, deltas(4, 6)),
        deltasOverdue: true,
      }),
      NOW,
    );
    expect(p.next).toEqual({ kind: 'snapshot', version: 6 });
  });

  it('buffered deltas are applied in version order from the held one, whatever order they came in', () => {
    const buffered = [
      { from: 6, to: 7 },
      { from: 4, to: 5 },
      { from: 5, to: 6 },
    ];
    const p = planScope(
      view({
        held: 4,
        manifest: manifest(7, deltas(4, 7)),
        buffered,
      }),
      NOW,
    );
    expect(p.apply).toEqual(steps(4, 7));
    expect(p.reaches).toBe(7);
    expect(p.next).toEqual({ kind: 'idle', reason: 'up-to-date' });
  });

  it('the buffered deltas applied, the rest of the chain is awaited', () => {
    const p = planScope(
      view({
        held: 4,
        manifest: manifest(7, deltas(4, 7)),
        buffered: [{ from: 4, to: 5 }],
      }),
      NOW,
    );
    expect(p.apply).toEqual([{ from: 4, to: 5 }]);
    expect(p.next).toEqual({
      kind: 'await-deltas',
      chain: steps(5, 7),
    });
  });

  it('buffered deltas already covered are discarded; one that does not continue the held version waits', () => {
    const p = planScope(
      view({
        held: 5,
        buffered: [
          { from: 3, to: 4 },
          { from: 4, to: 5 },
          { from: 5, to: 6 },
          { from: 8, to: 9 },
        ],
      }),
      NOW,
    );
    expect(p.apply).toEqual([{ from: 5, to: 6 }]);
    expect(p.discard.sort()).toEqual([3, 4]);
    expect(p.reaches).toBe(6);
  });

  it('an expired manifest starts no fetch, but verified buffered deltas are still applied', () => {
    const p = planScope(view({ held: 2, manifest: manifest(9, [[2, 3]], EXPIRED), buffered: [{ from: 2, to: 3 }] }), NOW);
    expect(p.apply).toEqual([{ from: 2, to: 3 }]);
    expect(p.next).toEqual({ kind: 'idle', reason: 'expired' });
    expect(planScope(view({ held: 0, manifest: manifest(9, [], EXPIRED) }), NOW).next).toEqual({ kind: 'idle', reason: 'expired' });
  });

  it('a download under way is finished when it leads to the manifest; one that does not is replaced', () => {
    const fetching5 = { version: 5, applying: false };
    const next = (v: Partial<ScopeView>) => planScope(view({ held: 0, ...v }), NOW).next;
    expect(next({ manifest: manifest(5), download: fetching5 })).toEqual({ kind: 'idle', reason: 'downloading' });
    // the manifest moved on, and a delta continues from the snapshot being fetched: finish it, then the delta
    expect(next({ manifest: manifest(6, [[5, 6]]), download: fetching5 })).toEqual({ kind: 'idle', reason: 'downloading' });
    // no delta from the snapshot being fetched: fetch the newer one instead
    expect(next({ manifest: manifest(8, [[7, 8]]), download: fetching5 })).toEqual({ kind: 'snapshot', version: 8 });
    // a snapshot being written to the store is never interrupted
    expect(next({ manifest: manifest(8), download: { version: 5, applying: true } })).toEqual({ kind: 'idle', reason: 'applying' });
  });

  it('several scopes are planned each on their own, in the order given', () => {
    const plans = planSync(
      [
        view({ scope: 'transit', held: 12, manifest: manifest(12, [[11, 12]]) }),
        view({
          scope: 'stoplist',
          held: 40,
          manifest: manifest(42, deltas(40, 42)),
          buffered: [{ from: 40, to: 41 }],
        }),
        view({ scope: 'school:17', held: 0, manifest: manifest(3) }),
      ],
      NOW,
    );
    expect(plans.map((p) => [p.scope, p.apply, p.next])).toEqual([
      ['transit', [], { kind: 'idle', reason: 'up-to-date' }],
      ['stoplist', [{ from: 40, to: 41 }], { kind: 'await-deltas', chain: [{ from: 41, to: 42 }] }],
      ['school:17', [], { kind: 'snapshot', version: 3 }],
    ]);
  });

  it('snapshot chunks still missing are fetched in order', () => {
    const chunks = [0, 1, 2, 3, 4].map((n) => ({ n, records: 10, sha256: '0'.repeat(64) }));
    expect(missingChunks({ chunks }, new Set([0, 3]))).toEqual([1, 2, 4]);
    expect(missingChunks({ chunks }, new Set([0, 1, 2, 3, 4]))).toEqual([]);
  });

  it('a delta chain is found only when unbroken', () => {
    expect(
      deltaChain(
        [
          { from: 1, to: 2 },
          { from: 2, to: 4 },
        ],
        1,
        4,
      ),
    ).toEqual([
      { from: 1, to: 2 },
      { from: 2, to: 4 },
    ]);
    expect(
      deltaChain(
        [
          { from: 1, to: 2 },
          { from: 3, to: 4 },
        ],
        1,
        4,
      ),
    ).toBeNull();
    expect(deltaChain([{ from: 1, to: 3 }], 1, 2)).toBeNull(); // overshoots
    expect(deltaChain([{ from: 1, to: 1 }], 1, 2)).toBeNull(); // a self-loop never ends
    expect(deltaChain([], 4, 4)).toEqual([]);
  });
});
