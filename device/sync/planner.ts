import type { Scope } from '../../protocol/lists.js';
import type { DeltaRef, ManifestHeader } from '../../protocol/wire/messages.js';

/**
 * The list planner: given what the device holds for a scope and what it has
 * received (the newest verified manifest, verified deltas waiting, a snapshot
 * download under way), decide what to do next. Pure: no clock (the time is
 * an argument), no store, no transport, so it is unit-tested on its own.
 *
 * The order of preference: buffered deltas that continue the held version
 * are applied first; then, if the manifest is still ahead, the deltas it
 * lists (retained on the broker, on their way) are awaited; when no chain of
 * deltas leads there, or they did not come in time, the snapshot of the
 * manifest's version is fetched chunk by chunk.
 */

/** A version step: a delta from one version to the next. */
export interface DeltaStep {
  from: number;
  to: number;
}

/** What the device holds and has received for one scope. */
export interface ScopeView {
  scope: Scope;
  /** The version the store holds (0 = none). */
  held: number;
  /** The newest verified manifest, if any came. */
  manifest: Pick<ManifestHeader, 'version' | 'expiresAt' | 'deltas'> | null;
  /** Verified deltas received and not applied yet. */
  buffered: readonly DeltaStep[];
  /** The snapshot download under way: its version, and whether its chunks are being written to the store. */
  download: { version: number; applying: boolean } | null;
  /** The deltas were awaited for too long: fetch the snapshot instead. */
  deltasOverdue?: boolean;
}

export type IdleReason =
  | 'no-manifest' // nothing to compare with yet
  | 'up-to-date' // the manifest's version is held
  | 'rollback' // the manifest offers an older version than held: never fetched
  | 'expired' // the manifest is past its expiry: nothing is fetched against it (the device reports sync.list-frozen)
  | 'downloading' // the snapshot download under way leads to the manifest's version: finish it
  | 'applying'; // a snapshot is being written to the store: wait for it

export type NextStep =
  | { kind: 'idle'; reason: IdleReason }
  /** The manifest lists deltas from the held version to its own, in this order: wait for them (they are retained). */
  | { kind: 'await-deltas'; chain: DeltaStep[] }
  /** Download the snapshot of this version (any other download is abandoned). */
  | { kind: 'snapshot'; version: number };

export interface ScopePlan {
  scope: Scope;
  /** Buffered deltas to apply now, in order: the first starts at the held version, each next one where the previous ended. */
  apply: DeltaStep[];
  /** The version held once `apply` succeeded; `next` is decided from it. */
  reaches: number;
  /** Buffered deltas (by from-version) that are of no use once `reaches` is held. */
  discard: number[];
  next: NextStep;
}

/** Plan one scope. */
export function planScope(v: ScopeView, now: Date): ScopePlan {
  const byFrom = new Map(v.buffered.map((d) => [d.from, d]));
  const apply: DeltaStep[] = [];
  let held = v.held;
  for (let d = byFrom.get(held); d; d = byFrom.get(held)) {
    byFrom.delete(held);
    apply.push({ from: d.from, to: d.to });
    held = d.to;
  }
  const discard = [...byFrom.values()].filter((d) => d.to <= held).map((d) => d.from);
  return { scope: v.scope, apply, reaches: held, discard, next: nextStep(v, held, now) };
}

/** Plan every scope the device holds, in the order given. */
export function planSync(views: readonly ScopeView[], now: Date): ScopePlan[] {
  return views.map((v) => planScope(v, now));
}

function nextStep(v: ScopeView, held: number, now: Date): NextStep {
  const m = v.manifest;
  if (!m) return idle('no-manifest');
  if (m.version < held) return idle('rollback');
  if (m.version === held) return idle('up-to-date');
  const dl = v.download;
  if (dl?.applying) return idle('applying');
  // a download under way is finished when it leads to the manifest's version (directly, or by deltas after it)
  if (dl && (dl.version === m.version || deltaChain(m.deltas, dl.version, m.version))) return idle('downloading');
  if (Date.parse(m.expiresAt) <= now.getTime()) return idle('expired');
  if (!dl && !v.deltasOverdue) {
    const chain = deltaChain(m.deltas, held, m.version);
    if (chain) return { kind: 'await-deltas', chain };
  }
  return { kind: 'snapshot', version: m.version };
}

function idle(reason: IdleReason): NextStep {
  return { kind: 'idle', reason };
}

/** The deltas leading from `from` to `to`, in order, or null when the chain is broken (a gap: too old). */
export function deltaChain(deltas: readonly Pick<DeltaRef, 'from' | 'to'>[], from: number, to: number): DeltaStep[] | null {
  const byFrom = new Map(deltas.map((d) => [d.from, d.to]));
  const chain: DeltaStep[] = [];
  let v = from;
  while (v < to) {
    const n = byFrom.get(v);
    if (n === undefined || n <= v) return null;
    chain.push({ from: v, to: n });
    v = n;
  }
  return v === to ? chain : null;
}

/** The snapshot chunks still to fetch, in order. */
export function missingChunks(manifest: Pick<ManifestHeader, 'chunks'>, have: ReadonlySet<number>): number[] {
  return manifest.chunks.filter((c) => !have.has(c.n)).map((c) => c.n);
}
