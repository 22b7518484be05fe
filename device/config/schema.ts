import { z } from 'zod';
import { DeviceId, DeviceKind, Direction, PartnerCategory, PartnerId, RouteId, SchoolId, VehicleId } from '../../protocol/ids.js';
import { ScopeName } from '../../protocol/lists.js';
import { TOKEN_SCHEMES } from '../../protocol/token.js';
import { CanteenRules, isTimeZone, PartnerRules, SchoolRules, Tariff } from '../../protocol/rules-schema.js';

export { isTimeZone, RulesFile } from '../../protocol/rules-schema.js';

/**
 * The device configuration as zod schemas. The rules it embeds (tariff, school,
 * canteen) are the published rules of protocol/rules-schema.ts.
 * docs/config.md describes every field with examples (test/fixtures/decide/).
 */

export const CURRENT_CONFIG_SCHEMA = 1;

/** A card reader the device uses. Without `readers`, every PC/SC reader present is used. */
export const ReaderConfig = z
  .object({
    /** PC/SC reader name, or a prefix of it. */
    name: z.string().min(1),
    direction: Direction.optional(),
  })
  .strict();

/** A serial peripheral (issue 5 refines the options per kind). */
export const PeripheralConfig = z
  .object({
    kind: z.enum(['turnstile', 'display', 'console']),
    port: z.string().min(1).optional(),
    baudRate: z.number().int().positive().optional(),
    protocol: z.string().min(1).optional(),
    /** Which reader (by name) this peripheral answers for; all when absent. */
    reader: z.string().optional(),
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const BrokerUrl = z.string().regex(/^(mqtts?|wss?|tcp):\/\/.+/, 'expected mqtt://host:port');
const schemeOf = (u: string) => u.slice(0, u.indexOf(':'));

export const SyncConfig = z
  .object({
    brokerUrl: BrokerUrl,
    /**
     * The other nodes of a clustered broker (issue 16), same scheme as brokerUrl: when the connection is lost
     * or fails, the device tries the next one, round. Optional, so a config with one broker stays valid as it is.
     */
    failoverUrls: z.array(BrokerUrl).max(16).optional(),
    deviceId: z.string().min(1).optional(),
    scopes: z.array(ScopeName).optional(),
    /** Server's Ed25519 public key: PEM, or base64/hex of the raw 32 bytes. */
    serverPublicKey: z.string().min(1).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    /** mqtts: the broker's CA certificate (PEM), pinned at enrolment; the broker must present a certificate it signed. */
    ca: z
      .string()
      .max(16_384)
      .regex(/^-----BEGIN CERTIFICATE-----\n/, 'a PEM certificate')
      .optional(),
    /** mqtts: the name the broker's certificate must carry when it differs from the URL's host. */
    servername: z.string().min(1).max(253).optional(),
  })
  .strict()
  .refine((s) => s.ca === undefined || s.brokerUrl.startsWith('mqtts://'), { message: 'sync.ca is for an mqtts:// broker', path: ['ca'] })
  .refine((s) => (s.failoverUrls ?? []).every((u) => schemeOf(u) === schemeOf(s.brokerUrl)), {
    message: 'every failover URL has the scheme of brokerUrl',
    path: ['failoverUrls'],
  });

export const TokenKeyConfig = z
  .object({
    version: z.number().int().min(0).max(0xffff),
    /**
     * The token scheme of a `hex` key (protocol/token.ts): written by rc-provision. Absent: the file predates the
     * PAN ‖ expiry migration, so the key is pan-psn. A key in a token carries its scheme itself (CKA_ID).
     */
    scheme: z.enum(TOKEN_SCHEMES).optional(),
    /** Hex key; better given through the environment (RC_TOKEN_KEY) than written here. */
    hex: z
      .string()
      .regex(/^(?:[0-9a-fA-F]{2}){16,64}$/, 'token key: 32 to 128 hex digits')
      .optional(),
    /** The key in a PKCS#11 token (the validator's SAM / secure element; SoftHSM2 in tests): the HMAC is computed inside it, the key is never in this file. */
    pkcs11: z
      .object({
        library: z.string().min(1),
        tokenLabel: z.string().min(1),
        /** File with the user PIN, mode 0600; without it the PIN comes from RC_PKCS11_PIN. */
        pinFile: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((t) => !(t.hex && t.pkcs11), { message: 'token key: either hex or pkcs11, not both' });

/** The device section's fields; each kind makes the ones it needs required. */
const deviceFields = {
  id: DeviceId,
  kind: DeviceKind,
  /** IANA time zone for calendar rules (months, days, schedules). */
  timeZone: z
    .string()
    .default('Europe/Moscow')
    .refine(isTimeZone, { error: (iss) => `unknown time zone "${String(iss.input)}"` }),
  /** bus: the route it serves now and its vehicle id. */
  route: RouteId.optional(),
  vehicle: VehicleId.optional(),
  /** turnstile and canteen: the school (its list is scope school:<schoolId>). */
  schoolId: SchoolId.optional(),
  /** partner: the partner (imported on the server) and its category (the published partner rules give its discount). */
  partnerId: PartnerId.optional(),
  partnerCategory: PartnerCategory.optional(),
};

/** The sections every kind of device may have. */
const common = {
  readers: z.array(ReaderConfig).optional(),
  peripherals: z.array(PeripheralConfig).optional(),
  sync: SyncConfig.optional(),
  tokenKey: TokenKeyConfig.optional(),
  /** Path of the SQLite store; the runtime picks a default when absent. */
  store: z
    .object({ path: z.string().min(1) })
    .strict()
    .optional(),
  /** Runtime files (rc-device run): the data dir (store, sync staging; default: the config file's dir) and the status socket (default <dataDir>/rc-device.sock). */
  runtime: z
    .object({ dataDir: z.string().min(1).optional(), statusSocket: z.string().min(1).optional() })
    .strict()
    .optional(),
};

/** A bus validator: its route, and a tariff that knows the route. */
export const BusConfigV1 = z
  .object({
    schema: z.literal(1),
    device: z.object({ ...deviceFields, kind: z.literal('bus'), route: RouteId }).strict(),
    tariff: Tariff,
    school: SchoolRules.optional(),
    canteen: CanteenRules.optional(),
    partners: PartnerRules.optional(),
    ...common,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!(c.device.route in c.tariff.routes))
      ctx.addIssue({ code: 'custom', path: ['device', 'route'], message: `route "${c.device.route}" is not in tariff.routes` });
  });

/** A school turnstile: its school and the school's rules. */
export const TurnstileConfigV1 = z
  .object({
    schema: z.literal(1),
    device: z.object({ ...deviceFields, kind: z.literal('turnstile'), schoolId: SchoolId }).strict(),
    tariff: Tariff.optional(),
    school: SchoolRules,
    canteen: CanteenRules.optional(),
    partners: PartnerRules.optional(),
    ...common,
  })
  .strict();

/** A canteen terminal: its school and the canteen rules. */
export const CanteenConfigV1 = z
  .object({
    schema: z.literal(1),
    device: z.object({ ...deviceFields, kind: z.literal('canteen'), schoolId: SchoolId }).strict(),
    tariff: Tariff.optional(),
    school: SchoolRules.optional(),
    canteen: CanteenRules,
    partners: PartnerRules.optional(),
    ...common,
  })
  .strict();

/** A partner's resident check: its partner, the partner's category and the partners' discount rules. */
export const PartnerConfigV1 = z
  .object({
    schema: z.literal(1),
    device: z.object({ ...deviceFields, kind: z.literal('partner'), partnerId: PartnerId, partnerCategory: PartnerCategory }).strict(),
    tariff: Tariff.optional(),
    school: SchoolRules.optional(),
    canteen: CanteenRules.optional(),
    partners: PartnerRules,
    ...common,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!(c.device.partnerCategory in c.partners.categories))
      ctx.addIssue({
        code: 'custom',
        path: ['device', 'partnerCategory'],
        message: `partner category "${c.device.partnerCategory}" is not in partners.categories`,
      });
  });

export type BusConfigV1 = z.infer<typeof BusConfigV1>;
export type TurnstileConfigV1 = z.infer<typeof TurnstileConfigV1>;
export type CanteenConfigV1 = z.infer<typeof CanteenConfigV1>;
export type PartnerConfigV1 = z.infer<typeof PartnerConfigV1>;

const BY_KIND = { bus: BusConfigV1, turnstile: TurnstileConfigV1, canteen: CanteenConfigV1, partner: PartnerConfigV1 } as const;

/** What a technician reads when a kind's required part is missing (instead of zod's "expected object, received undefined"). */
const MISSING: Record<DeviceKind, Record<string, string>> = {
  bus: { tariff: 'a bus needs a tariff', 'device.route': 'a bus needs its route' },
  turnstile: { school: 'a turnstile needs school rules', 'device.schoolId': 'a turnstile needs its schoolId' },
  canteen: { canteen: 'a canteen needs canteen rules', 'device.schoolId': 'a canteen needs its schoolId' },
  partner: {
    partners: 'a partner device needs partner rules',
    'device.partnerId': 'a partner device needs its partnerId',
    'device.partnerCategory': 'a partner device needs its partnerCategory',
  },
};

/** Any kind, for reporting what is wrong when the kind itself is missing or unknown. */
const AnyKindV1 = z
  .object({
    schema: z.literal(1),
    device: z.object(deviceFields).strict(),
    tariff: Tariff.optional(),
    school: SchoolRules.optional(),
    canteen: CanteenRules.optional(),
    partners: PartnerRules.optional(),
    ...common,
  })
  .strict();

/**
 * The config: a union discriminated by `device.kind` (bus / turnstile / canteen / partner),
 * each variant requiring what its kind needs. zod's discriminatedUnion only looks
 * at a top-level key, so this picks the variant by `device.kind` itself; the
 * problems it reports are the variant's, at their own paths.
 */
export const ConfigV1 = z.unknown().transform((raw, ctx): BusConfigV1 | TurnstileConfigV1 | CanteenConfigV1 | PartnerConfigV1 => {
  const kind = DeviceKind.safeParse((raw as { device?: { kind?: unknown } } | null)?.device?.kind);
  if (kind.success) {
    const missing = MISSING[kind.data];
    const r = BY_KIND[kind.data].safeParse(raw, {
      error: (iss) => (iss.code === 'invalid_type' && iss.input === undefined ? missing[(iss.path ?? []).join('.')] : undefined),
    });
    if (r.success) return r.data;
    for (const iss of r.error.issues) ctx.addIssue({ code: 'custom', path: iss.path, message: iss.message });
  } else {
    const r = AnyKindV1.safeParse(raw);
    for (const iss of r.error?.issues ?? [{ path: ['device', 'kind'], message: 'unknown device kind' }])
      ctx.addIssue({ code: 'custom', path: iss.path, message: iss.message });
  }
  return z.NEVER;
});
export type ConfigV1 = z.output<typeof ConfigV1>;

/**
 * The current config shape.
 * @alias
 */
export const Config = ConfigV1;
/** @alias */
export type Config = ConfigV1;
