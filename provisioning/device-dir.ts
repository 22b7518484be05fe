import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import { loadConfigFile, type Config } from '../device/config/index.js';
import { loadPrivatePem, rawPublic, type DeviceKeys } from '../protocol/sealing.js';
import { DeviceKind, GateDirection } from '../protocol/ids.js';

/**
 * What rc-provision keeps in the device directory (default /var/lib/rc-device):
 *   device.json      the runtime's config (schema of device/config), 0600: it holds the broker password and token key
 *   identity.pem     Ed25519 private key (signs requests to the server), 0600
 *   box.pem          X25519 private key (the server seals secrets to it), 0600
 *   provision.json   who this device is and which server enrolled it, 0600
 *   device.sqlite*   the runtime's store (lists, journal); sync-staging/ its downloads
 * device.json is written last: its presence means "provisioned".
 */
export const DEFAULT_DIR = '/var/lib/rc-device';

export const files = (dir: string) => ({
  config: join(dir, 'device.json'),
  identity: join(dir, 'identity.pem'),
  box: join(dir, 'box.pem'),
  provision: join(dir, 'provision.json'),
  store: join(dir, 'device.sqlite'),
  staging: join(dir, 'sync-staging'),
});

export const ProvisionRecord = z
  .object({
    deviceId: z.string(),
    kind: DeviceKind,
    server: z.string().url(),
    school: z.string().nullable(),
    route: z.string().nullable(),
    vehicle: z.string().nullable(),
    /** partner devices: the partner id (records of other kinds, and older ones, have none). */
    partner: z.string().nullable().optional(),
    // records written before the one direction vocabulary hold `in` / `out`: read them as entry / exit
    direction: z.preprocess((d) => (d === 'in' ? 'entry' : d === 'out' ? 'exit' : d), GateDirection.nullable()),
    brokerUrl: z.string(),
    scopes: z.array(z.string()),
    enrolledAt: z.string(),
    rotatedAt: z.string().nullable().default(null),
    identityKey: z.string(),
    boxKey: z.string(),
    serverKeyFingerprint: z.string(),
    tokenKeyVersion: z.number().int(),
    /** The enrolment server's CA (PEM) when it was reached over https with the CA pinned by the token: later calls trust it alone. */
    serverCa: z.string().nullable().optional(),
  })
  .strict();
export type ProvisionRecord = z.infer<typeof ProvisionRecord>;

export function fingerprint(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export function isProvisioned(dir: string): boolean {
  return existsSync(files(dir).config);
}

/**
 * Write several files so that either all of them end up in place or none:
 * each goes to a temp file in the same directory first (0600), and they are
 * renamed into place only when all were written, `device.json` last. On a
 * failure, temp files and anything already renamed are removed.
 */
export function writeAllOrNothing(dir: string, entries: readonly { file: string; text: string; mode?: number }[]): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staged: { tmp: string; file: string }[] = [];
  const placed: string[] = [];
  try {
    for (const e of entries) {
      const tmp = `${e.file}.tmp-${tag}`;
      writeFileSync(tmp, e.text, { mode: e.mode ?? 0o600, flag: 'wx' });
      chmodSync(tmp, e.mode ?? 0o600);
      staged.push({ tmp, file: e.file });
    }
    for (const s of staged) {
      renameSync(s.tmp, s.file);
      placed.push(s.file);
    }
  } catch (err) {
    for (const s of staged) rmSync(s.tmp, { force: true });
    for (const f of placed) rmSync(f, { force: true });
    throw new RcError(ErrorCode.StoreOpenFailed, `cannot write to ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; nothing was changed`, { dir });
  }
}

export interface DeviceState {
  dir: string;
  config: Config;
  record: ProvisionRecord;
  keys: DeviceKeys;
}

/** Load a provisioned device: provision.not-provisioned when there is no device.json; config.* when it does not validate. */
export function loadDevice(dir: string): DeviceState {
  const f = files(dir);
  if (!existsSync(f.config))
    throw new RcError(ErrorCode.ProvisionNotDone, `${dir} holds no provisioned device (no device.json); run rc-provision init`, { dir });
  const config = loadConfigFile(f.config);
  let rec: unknown;
  try {
    rec = JSON.parse(readFileSync(f.provision, 'utf8'));
  } catch (e) {
    throw new RcError(ErrorCode.ConfigNotFound, `${f.provision}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'not JSON'}); reset and provision again`, {
      file: f.provision,
    });
  }
  const r = ProvisionRecord.safeParse(rec);
  if (!r.success)
    throw new RcError(ErrorCode.ConfigInvalid, `${f.provision}: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`, { file: f.provision });
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new RcError(ErrorCode.ConfigNotFound, `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file });
    }
  };
  const keys = { identity: loadPrivatePem(read(f.identity), f.identity), box: loadPrivatePem(read(f.box), f.box) };
  if (rawPublic(keys.identity) !== r.data.identityKey || rawPublic(keys.box) !== r.data.boxKey) {
    throw new RcError(ErrorCode.ConfigInvalid, `the keys in ${dir} are not the ones this device was enrolled with; reset and provision again`, { dir });
  }
  return { dir, config, record: r.data, keys };
}
