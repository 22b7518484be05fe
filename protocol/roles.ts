import { z } from 'zod';

/**
 * Who may use the operator's API and console (issue 12):
 *  - admin: everything, including accounts;
 *  - operator: imports, rules, devices, stop-list, charging;
 *  - school: one school's people, devices and reports;
 *  - carrier: reports for its own routes only;
 *  - auditor: read-only.
 */
export const ROLES = ['admin', 'operator', 'school', 'carrier', 'auditor'] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/**
 * Who may call a route:
 *  - 'public': anyone (health, the server's public key);
 *  - 'device': a device with its own proof (enrolment token, device credential), checked by the handler;
 *  - 'holder': a cardholder signed in to the cabinet (cookie rc_cabinet; the handler sees ctx.holder);
 *  - a list of roles: a signed-in user or an API token of one of these roles.
 */
export type Access = 'public' | 'device' | 'holder' | readonly Role[];

/** Roles that may read everything the operator reads. */
export const READERS: readonly Role[] = ['admin', 'operator', 'auditor'];
/** Roles that may change the operator's data (imports, rules, devices, stop-list, charging). */
export const WRITERS: readonly Role[] = ['admin', 'operator'];
