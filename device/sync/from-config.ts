import { join } from 'node:path';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { Scope } from '../../protocol/lists.js';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/index.js';
import type { SyncClientOptions, SyncStore } from './client.js';

/** The scopes a device holds when its config does not list them. */
export function defaultScopes(cfg: Config): Scope[] {
  // a partner's resident check works on the transit list (connected cards) and the stop-list
  if (cfg.device.kind === 'bus' || cfg.device.kind === 'partner') return ['transit', 'stoplist'];
  return [`school:${cfg.device.schoolId ?? ''}`, 'stoplist'];
}

/** Sync client options from the device config's `sync` section (config.invalid when it cannot sync). */
export function syncOptionsFromConfig(cfg: Config, store: SyncStore, dataDir: string, log: Logger): SyncClientOptions {
  const s = cfg.sync;
  if (!s) throw new RcError(ErrorCode.ConfigInvalid, 'config has no sync section: the device cannot sync', { path: 'sync' });
  if (!s.serverPublicKey)
    throw new RcError(ErrorCode.ConfigInvalid, 'sync.serverPublicKey is missing: lists cannot be verified', { path: 'sync.serverPublicKey' });
  return {
    store,
    deviceId: s.deviceId ?? cfg.device.id,
    brokerUrl: s.brokerUrl,
    ...(s.failoverUrls?.length ? { failoverUrls: s.failoverUrls } : {}),
    scopes: (s.scopes as Scope[] | undefined) ?? defaultScopes(cfg),
    serverPublicKey: s.serverPublicKey,
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(s.ca !== undefined ? { tls: { ca: s.ca, ...(s.servername !== undefined ? { servername: s.servername } : {}) } } : {}),
    stagingDir: join(dataDir, 'sync-staging'),
    log,
    // buses decide fares on fleet usage (issue 10 item 4) when the store can hold it
    ...(cfg.device.kind === 'bus' && 'applyUsage' in store ? { usageStore: store as Pick<Store, 'applyUsage'> } : {}),
  };
}
