import { z } from 'zod';
import { ScopeName, SchoolId } from '../../protocol/lists.js';
import { CanteenRules, Direction, isTimeZone, RouteId, SchoolRules, Tariff } from '../../protocol/rules-schema.js';

export { isTimeZone, RulesFile, SchoolRules } from '../../protocol/rules-schema.js';

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

export const SyncConfig = z
  .object({
    brokerUrl: z.string().regex(/^(mqtts?|wss?|tcp):\/\/.+/, 'expected mqtt://host:port'),
    deviceId: z.string().min(1).optional(),
    scopes: z.array(ScopeName).optional(),
    /** Server's Ed25519 public key: PEM, or base64/hex of the raw 32 bytes. */
    serverPublicKey: z.string().min(1).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
  })
  .strict();

export const TokenKeyConfig = z
  .object({
    version: z.number().int().min(0).max(0xffff),
    /** Hex key; better given through the environment (RC_TOKEN_KEY) than written here. */
    hex: z.string().regex(/^(?:[0-9a-fA-F]{2}){16,64}$/, 'token key: 32 to 128 hex digits').optional(),
  })
  .strict();

const DeviceId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'device id: 1-64 of A-Z a-z 0-9 _ . : -');

const DeviceSection = z
  .object({
    id: DeviceId,
    kind: z.enum(['bus', 'turnstile', 'canteen']),
    /** IANA time zone for calendar rules (months, days, schedules). */
    timeZone: z.string().default('Europe/Moscow'),
    /** bus: the route it serves now and its vehicle id. */
    route: RouteId.optional(),
    vehicle: z.string().min(1).max(32).optional(),
    /** turnstile and canteen: the school (its list is scope school:<schoolId>). */
    schoolId: SchoolId.optional(),
  })
  .strict();

export const ConfigV1 = z
  .object({
    schema: z.literal(1),
    device: DeviceSection,
    tariff: Tariff.optional(),
    school: SchoolRules.optional(),
    canteen: CanteenRules.optional(),
    readers: z.array(ReaderConfig).optional(),
    peripherals: z.array(PeripheralConfig).optional(),
    sync: SyncConfig.optional(),
    tokenKey: TokenKeyConfig.optional(),
    /** Path of the SQLite store; the runtime picks a default when absent. */
    store: z.object({ path: z.string().min(1) }).strict().optional(),
    /** Runtime files (rc-device run): the data dir (store, sync staging; default: the config file's dir) and the status socket (default <dataDir>/rc-device.sock). */
    runtime: z.object({ dataDir: z.string().min(1).optional(), statusSocket: z.string().min(1).optional() }).strict().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const need = (cond: boolean, path: (string | number)[], message: string) => {
      if (!cond) ctx.addIssue({ code: 'custom', path, message });
    };
    if (!isTimeZone(c.device.timeZone)) ctx.addIssue({ code: 'custom', path: ['device', 'timeZone'], message: `unknown time zone "${c.device.timeZone}"` });
    if (c.device.kind === 'bus') {
      need(c.tariff !== undefined, ['tariff'], 'a bus needs a tariff');
      need(c.device.route !== undefined, ['device', 'route'], 'a bus needs its route');
      if (c.tariff && c.device.route !== undefined)
        need(c.device.route in c.tariff.routes, ['device', 'route'], `route "${c.device.route}" is not in tariff.routes`);
    } else {
      need(c.device.schoolId !== undefined, ['device', 'schoolId'], `a ${c.device.kind} needs its schoolId`);
      if (c.device.kind === 'turnstile') need(c.school !== undefined, ['school'], 'a turnstile needs school rules');
      if (c.device.kind === 'canteen') need(c.canteen !== undefined, ['canteen'], 'a canteen needs canteen rules');
    }
  });
export type ConfigV1 = z.infer<typeof ConfigV1>;

/**
 * The current config shape.
 * @alias
 */
export const Config = ConfigV1;
/** @alias */
export type Config = ConfigV1;
