import { z } from 'zod';
import { DeviceId, DeviceKind, GateDirection, PartnerId, RouteId, SchoolId, VehicleId } from './ids.js';
import { RawKeyB64, Sealed } from './sealing.js';
import { CertPem } from './tls-pin.js';
import { TOKEN_SCHEMES } from './token.js';

/**
 * The provisioning HTTP contract between rc-provision (device), the operator's
 * CLI and the sync-server. Declared once; both ends validate with these.
 *
 *   POST /v1/enrol-tokens          operator: create a one-time enrolment token
 *   POST /v1/enrol                 device: public keys + token → identity, sealed secrets
 *   POST /v1/devices/<id>/rotate   device (signed): new broker password, sealed
 *   POST /v1/devices/<id>/whoami   device (signed): is this identity still valid?
 *   GET  /v1/devices               operator: enrolled devices
 *   POST /v1/devices/<id>/revoke   operator: cut a device off at once
 */

export const EnrolToken = z.string().regex(/^rce_[A-Za-z0-9_-]{32}$/, 'enrolment token: rce_ and 32 characters');

/**
 * The token as the operator hands it to the technician: when the enrolment listener runs TLS, the one-time
 * token is followed by `.` and the pin of the operator's CA (protocol/tls-pin.ts), so rc-provision trusts
 * that listener and nothing else. Only the part before the dot is sent to the server.
 */
export const EnrolTokenPinned = z
  .string()
  .regex(/^rce_[A-Za-z0-9_-]{32}(\.[A-Za-z0-9_-]{43})?$/, 'enrolment token: rce_, 32 characters, optionally . and a CA pin');

export const TokenCreateBody = z
  .object({
    kind: DeviceKind,
    school: SchoolId.optional(),
    route: RouteId.optional(),
    /** partner: only for this partner. */
    partner: PartnerId.optional(),
    ttlSec: z
      .number()
      .int()
      .min(60)
      .max(30 * 86_400),
  })
  .strict()
  .refine((b) => !(b.school && b.route), 'a token names a school or a route, not both')
  .refine((b) => !(b.kind === 'bus' && b.school), 'a bus token names a route, not a school')
  .refine((b) => !(b.kind !== 'bus' && b.route), 'a turnstile/canteen token names a school, not a route')
  .refine((b) => !(b.kind === 'partner' && b.school), 'a partner token names a partner, not a school')
  .refine((b) => !(b.kind !== 'partner' && b.partner), 'only a partner token names a partner');
export type TokenCreateBody = z.infer<typeof TokenCreateBody>;

export const TokenCreated = z
  .object({
    token: EnrolTokenPinned,
    id: z.string(),
    kind: DeviceKind,
    school: z.string().nullable(),
    route: z.string().nullable(),
    partner: z.string().nullable().optional(),
    expiresAt: z.string(),
  })
  .strict();
export type TokenCreated = z.infer<typeof TokenCreated>;

/** An RSA public key, SPKI PEM (what Pkcs11Token.wrappingPublicKey returns). */
export const WrapKeyPem = z
  .string()
  .max(1000)
  .regex(/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/);

export const EnrolBody = z
  .object({
    token: EnrolToken,
    kind: DeviceKind,
    school: SchoolId.optional(),
    route: RouteId.optional(),
    vehicle: VehicleId.optional(),
    direction: GateDirection.optional(),
    /** partner: the partner id (imported on the server). */
    partner: PartnerId.optional(),
    identityKey: RawKeyB64,
    boxKey: RawKeyB64,
    /** The device token's RSA public key (SPKI PEM): the server then sends the card-token key wrapped for it, never in clear. */
    wrapKey: WrapKeyPem.optional(),
  })
  .strict();
export type EnrolBody = z.infer<typeof EnrolBody>;

/**
 * What the server seals to the device's box key. The card-token key is `wrapped` (RSA-OAEP, base64) for the
 * device token's wrapKey when the device sent one, else `hex` in clear (the demo and tests without a token).
 */
export const Secrets = z
  .object({
    password: z.string().min(16).max(128),
    tokenKey: z
      .object({
        version: z.number().int().min(0).max(0xffff),
        hex: z
          .string()
          .regex(/^(?:[0-9a-fA-F]{2}){16,64}$/)
          .optional(),
        wrapped: z
          .string()
          .regex(/^[A-Za-z0-9+/]{300,1400}={0,2}$/)
          .optional(),
        /** The version's token scheme (protocol/token.ts); absent from a server older than the PAN ‖ expiry migration: pan-psn. */
        scheme: z.enum(TOKEN_SCHEMES).optional(),
      })
      .strict()
      .refine((k) => (k.hex === undefined) !== (k.wrapped === undefined), { message: 'token key: exactly one of hex and wrapped' }),
    /**
     * mqtts: the broker's CA certificate, which the device pins (it trusts no other for MQTT). Inside the sealed
     * part like the password; it is authentic because the enrolment channel is (TLS pinned by the token).
     */
    brokerCa: CertPem.optional(),
  })
  .strict();
export type Secrets = z.infer<typeof Secrets>;

export const EnrolAnswer = z
  .object({
    deviceId: DeviceId,
    kind: DeviceKind,
    school: z.string().nullable(),
    route: z.string().nullable(),
    /** partner: the partner as imported (its category selects the discount in the published partner rules). */
    partner: z.object({ id: PartnerId, name: z.string(), category: z.string() }).strict().nullable().optional(),
    brokerUrl: z.string().regex(/^(mqtts?|tcp|wss?):\/\/.+/),
    username: z.string(),
    scopes: z.array(z.string()),
    serverPublicKey: z.string().min(1),
    /** The published rules document (tariff / school / canteen) when the server has one. */
    rules: z.unknown().nullable(),
    sealed: Sealed,
  })
  .strict();
export type EnrolAnswer = z.infer<typeof EnrolAnswer>;

export const Proof = z
  .object({
    at: z.number().int(),
    nonce: z.string().min(8).max(64),
    sig: z.string().min(1).max(200),
    /** rotate: the device token's RSA public key, so the card-token key comes back wrapped for it (it is sealed to the device's box key as well). */
    wrapKey: WrapKeyPem.optional(),
  })
  .strict();
export type Proof = z.infer<typeof Proof>;

export const RotateAnswer = z.object({ deviceId: DeviceId, username: z.string(), sealed: Sealed }).strict();
export type RotateAnswer = z.infer<typeof RotateAnswer>;

export const WhoAmI = z.object({ deviceId: DeviceId, revoked: z.boolean(), brokerUrl: z.string(), serverTime: z.string() }).strict();
export type WhoAmI = z.infer<typeof WhoAmI>;

export const DeviceRow = z
  .object({
    id: DeviceId,
    kind: DeviceKind,
    school: z.string().nullable(),
    route: z.string().nullable(),
    vehicle: z.string().nullable(),
    direction: GateDirection.nullable(),
    partner: z.string().nullable().optional(),
    enrolledAt: z.string(),
    rotatedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    online: z.boolean(),
    lastSeen: z.string().nullable(),
  })
  .strict();
export type DeviceRow = z.infer<typeof DeviceRow>;
export const DeviceList = z.object({ devices: z.array(DeviceRow) }).strict();
