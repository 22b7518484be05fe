import type { Role } from '../../protocol/roles.js';

/** Who calls a role route: a signed-in user or an API token (school and carrier roles carry their id). */
export interface Principal {
  kind: 'user' | 'token';
  name: string;
  role: Role;
  school?: string;
  carrier?: string;
}

/** The principal's scope ids, only those it has. */
export function scopeOf(r: { school: string | null; carrier: string | null }): { school?: string; carrier?: string } {
  return { ...(r.school ? { school: r.school } : {}), ...(r.carrier ? { carrier: r.carrier } : {}) };
}
