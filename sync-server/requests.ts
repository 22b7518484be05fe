import type { Scope } from '../protocol/lists.js';

/**
 * What a device's `request` message (rc/v1/device/<id>/request: "I lack these
 * scopes") may cost the server and the fleet. A request is answered with the
 * scope's signed manifest only, republished (retained) on its topic: the deltas
 * and chunks it names are retained already, and a device fetches what it lacks
 * from them. So a request never republishes a whole list to the fleet.
 *
 * - only scopes the device holds: an enrolled device's own scopes; an unknown
 *   device (the open policy of the demo and tests) any existing scope;
 * - never a scope that does not exist (no retained manifest for invented names);
 * - per device at most one answered request per `perDeviceMs`, and per scope at
 *   most one manifest per `perScopeMs` for the whole fleet.
 */
export interface RequestPolicyOptions {
  perDeviceMs: number;
  perScopeMs: number;
}

export const DEFAULT_REQUEST_POLICY: RequestPolicyOptions = { perDeviceMs: 10_000, perScopeMs: 5_000 };

export class RequestPolicy {
  private readonly lastByDevice = new Map<string, number>();
  private readonly lastByScope = new Map<string, number>();

  constructor(
    /** The scopes an enrolled device holds, or null for a device the registry does not know. */
    private readonly scopesOf: (device: string) => readonly Scope[] | null,
    /** The scopes that exist (have been published). */
    private readonly existing: () => readonly Scope[],
    private readonly opts: RequestPolicyOptions = DEFAULT_REQUEST_POLICY,
  ) {}

  /** The scopes whose manifest to republish for this request (often none). */
  admit(device: string, requested: readonly string[], nowMs: number): { scopes: Scope[]; refused: string | null } {
    const last = this.lastByDevice.get(device);
    if (last !== undefined && nowMs - last < this.opts.perDeviceMs) return { scopes: [], refused: 'rate-limited' };
    const own = this.scopesOf(device);
    const exist = new Set(this.existing());
    const allowed = requested.filter((s): s is Scope => exist.has(s as Scope) && (own === null || own.includes(s as Scope)));
    if (allowed.length === 0) return { scopes: [], refused: 'no-such-scope' };
    this.lastByDevice.set(device, nowMs);
    const scopes = allowed.filter((s) => nowMs - (this.lastByScope.get(s) ?? -Infinity) >= this.opts.perScopeMs);
    for (const s of scopes) this.lastByScope.set(s, nowMs);
    if (this.lastByDevice.size > 100_000) this.lastByDevice.clear(); // bounded memory whatever ids are invented
    return { scopes, refused: scopes.length ? null : 'recently-answered' };
  }
}
