import { z } from 'zod';

/**
 * Identifiers and kinds every program shares, declared once: the device
 * config, the enrolment contract, the MQTT topics and the rules all use these.
 */

/** A device id: also one MQTT topic level (rc/v1/device/<id>/…), so no '/', '+' or '#'. */
export const DEVICE_ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
export const DeviceId = z.string().regex(DEVICE_ID_RE, 'device id: 1-64 of A-Z a-z 0-9 _ . : -');
export type DeviceId = z.infer<typeof DeviceId>;

export const RouteId = z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'route id: 1-32 of A-Z a-z 0-9 _ . -');
export type RouteId = z.infer<typeof RouteId>;

export const VehicleId = z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'vehicle id: 1-32 of A-Z a-z 0-9 _ . -');
export type VehicleId = z.infer<typeof VehicleId>;

/** A school id (its list is the scope school:<id>). */
export const SchoolId = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'school id: 1-32 of A-Z a-z 0-9 _ -');
export type SchoolId = z.infer<typeof SchoolId>;

/** A partner (shop, museum, theatre) that gives residents a discount; imported with `rc-sync-server import partners`. */
export const PartnerId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'partner id: 1-64 of A-Z a-z 0-9 _ . -');
export type PartnerId = z.infer<typeof PartnerId>;

/** A partner category (museum, theatre, shop…): the published rules give each its discount. */
export const PartnerCategory = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'partner category: lower-case letters, digits and dashes, starting with a letter');
export type PartnerCategory = z.infer<typeof PartnerCategory>;

export const DEVICE_KINDS = ['bus', 'turnstile', 'canteen', 'partner'] as const;
export const DeviceKind = z.enum(DEVICE_KINDS);
export type DeviceKind = z.infer<typeof DeviceKind>;

/** The way one tap goes through a gate (a reader's direction). */
export const DIRECTIONS = ['entry', 'exit'] as const;
export const Direction = z.enum(DIRECTIONS);
export type Direction = z.infer<typeof Direction>;

/** The way a gate is installed: one way, or `both` when it reads both ways (enrolment, registry). */
export const GATE_DIRECTIONS = [...DIRECTIONS, 'both'] as const;
export const GateDirection = z.enum(GATE_DIRECTIONS);
export type GateDirection = z.infer<typeof GateDirection>;
