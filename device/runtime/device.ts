import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';
import type { TokenKey } from '../../protocol/token.js';
import { loadRules, withRules } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { resolveTokenDeriver } from '../emv/token-key.js';
import { createPeripheral, type PeripheralDeps } from '../io/factory.js';
import { PcscReaderSource } from '../reader/pcsc.js';
import type { ReaderSource } from '../reader/types.js';
import { Store } from '../store/index.js';
import { usageContext } from '../store/usage-merge.js';
import { SyncClient, syncOptionsFromConfig, type SyncClientOptions } from '../sync/index.js';
import { deviceCategoryTable, type CategoryTable } from '../../protocol/categories.js';
import type { Clock } from './clock.js';
import type { RuntimePeripheral } from './peripherals.js';
import { Runtime } from './runtime.js';
import { serveStatus } from './status.js';

/**
 * A device assembled from its config: store, reader source, peripherals,
 * sync client (when the config has a sync section), the tap loop and the
 * status socket. `rc-device run` and the demo both build devices here.
 */

export interface DevicePaths {
  dataDir: string;
  storePath: string;
  statusSocket: string;
}

/** The status socket systemd's RuntimeDirectory=rc-device gives (deploy/rc-device.service). */
export const SYSTEM_STATUS_SOCKET = '/run/rc-device/rc-device.sock';

/**
 * Where a device keeps its files. Data dir: config `runtime.dataDir`, else
 * $RC_DATA_DIR, else systemd's $STATE_DIRECTORY, else the config file's dir.
 * Status socket: config `runtime.statusSocket`, else $RC_STATUS_SOCKET, else
 * systemd's $RUNTIME_DIRECTORY/rc-device.sock, else <dataDir>/rc-device.sock.
 */
export function devicePaths(cfg: Config, configFile?: string, env: NodeJS.ProcessEnv = process.env): DevicePaths {
  const base = configFile ? dirname(resolve(configFile)) : process.cwd();
  const abs = (p: string, rel: string) => (isAbsolute(p) ? p : resolve(rel, p));
  const firstDir = (v: string | undefined) => v?.split(':')[0] || undefined; // systemd may list several
  const dataDir = abs(cfg.runtime?.dataDir ?? env.RC_DATA_DIR ?? firstDir(env.STATE_DIRECTORY) ?? '.', base);
  const runDir = firstDir(env.RUNTIME_DIRECTORY);
  return {
    dataDir,
    storePath: abs(cfg.store?.path ?? 'device.sqlite', dataDir),
    statusSocket: abs(cfg.runtime?.statusSocket ?? env.RC_STATUS_SOCKET ?? (runDir ? resolve(runDir, 'rc-device.sock') : 'rc-device.sock'), dataDir),
  };
}

/** The device config's peripheral entry → the io factory's raw config. */
export function ioPeripheralConfig(p: NonNullable<Config['peripherals']>[number]): Record<string, unknown> {
  if (p.kind === 'console') return { kind: 'console', ...(p.options ?? {}) };
  return {
    kind: p.kind,
    ...(p.port !== undefined ? { port: p.port } : {}),
    ...(p.baudRate !== undefined ? { baudRate: p.baudRate } : {}),
    ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
    ...(p.options ?? {}),
  };
}

/** Builds (validates) the config's peripherals without opening any; a bad entry is config.invalid with `peripherals.<i>.` in its path. */
export function createDevicePeripherals(entries: NonNullable<Config['peripherals']>, deps: PeripheralDeps = {}): RuntimePeripheral[] {
  return entries.map((p, i) => {
    try {
      const peripheral = createPeripheral(ioPeripheralConfig(p), deps);
      return { peripheral, ...(p.reader !== undefined ? { reader: p.reader } : {}) };
    } catch (e) {
      if (isRcError(e, ErrorCode.ConfigInvalid)) {
        throw new RcError(e.code, e.message, { ...e.context, path: `peripherals.${i}.${String(e.context?.path ?? '')}` });
      }
      throw e;
    }
  });
}

export interface StartDeviceOptions {
  config: Config;
  configFile?: string;
  log: Logger;
  /** Reader source; default: PC/SC. */
  source?: ReaderSource;
  peripheralDeps?: PeripheralDeps;
  clock?: Clock;
  tokenKey?: TokenKey | TokenDeriver;
  /** Accept the public development key when none is configured (the demo and tests: --dev-token-key or RC_DEV_TOKEN_KEY=1). */
  allowDevTokenKey?: boolean;
  /** Serve the status socket (default true). */
  statusSocket?: boolean;
  /** Close the reader source on stop (default true; see RuntimeOptions.closeSource). */
  closeSource?: boolean;
  /** Extra sync client options (tests: short backoffs). */
  syncOverrides?: Partial<SyncClientOptions>;
  env?: NodeJS.ProcessEnv;
}

export interface RunningDevice {
  runtime: Runtime;
  store: Store;
  paths: DevicePaths;
  sync: SyncClient | null;
  stop(): Promise<void>;
}

export async function startDevice(o: StartDeviceOptions): Promise<RunningDevice> {
  const env = o.env ?? process.env;
  let cfg = o.config;
  const log = o.log;
  const paths = devicePaths(cfg, o.configFile, env);
  mkdirSync(paths.dataDir, { recursive: true });
  const ownDeriver = o.tokenKey
    ? null
    : resolveTokenDeriver(cfg.tokenKey, log.child({ component: 'token' }), env, { allowDev: o.allowDevTokenKey === true || env.RC_DEV_TOKEN_KEY === '1' });
  const tokenKey = o.tokenKey ?? ownDeriver!;
  if (cfg.sync && env.RC_SYNC_PASSWORD) cfg = { ...cfg, sync: { ...cfg.sync, password: env.RC_SYNC_PASSWORD } };

  // the peripherals are built (validated) before anything is opened
  const peripherals = createDevicePeripherals(cfg.peripherals ?? [], { log, ...o.peripheralDeps });

  let runtime: Runtime | null = null;
  // first the status socket: a second instance stops here (runtime.already-running) before touching the store
  const status =
    o.statusSocket !== false
      ? await serveStatus(paths.statusSocket, () => {
          if (!runtime) throw new Error('starting');
          return runtime.status();
        })
      : null;
  // benefit categories are read through the rules the device holds (the published ones once applied)
  let catsOf: { config: Config; table: CategoryTable } | null = null;
  const categories = (): CategoryTable => {
    const c = runtime?.config ?? cfg;
    if (catsOf?.config !== c) catsOf = { config: c, table: deviceCategoryTable(c) };
    return catsOf.table;
  };
  let store: Store;
  try {
    store = Store.open(paths.storePath, { deviceId: cfg.device.id, categories });
    if (cfg.tariff) store.setUsageContext(usageContext(cfg.tariff)); // fleet usage refers to the tariff's routes and quotas
  } catch (e) {
    await status?.close();
    throw e;
  }
  let sync: SyncClient | null = null;
  try {
    if (cfg.sync) {
      const so = syncOptionsFromConfig(cfg, store, paths.dataDir, log.child({ component: 'sync' }));
      sync = new SyncClient({
        ...so,
        readerState: () => {
          const st = runtime?.status();
          return st ? `${st.pcsc}; ${st.readers.map((r) => `${r.name}:${r.state}`).join(', ')}` : 'starting';
        },
        onConfig: (name, version, doc) => applyPublishedRules(name, version, doc),
        categories,
        ...o.syncOverrides,
      });
    }
    const source = o.source ?? (await PcscReaderSource.create({ log: log.child({ component: 'reader' }) }));
    runtime = new Runtime({
      config: cfg,
      store,
      source,
      peripherals,
      tokenKey,
      log,
      ...(o.clock ? { clock: o.clock } : {}),
      sync,
      closeSource: o.closeSource ?? true,
    });
    const rt = runtime;
    // a rules document published by the server ("rules-<device kind>" or "rules-school-<id>") replaces the rules
    const applyPublishedRules = (name: string, version: number, doc: unknown) => {
      const mine = [`rules-${cfg.device.kind}`, ...(cfg.device.schoolId ? [`rules-school-${cfg.device.schoolId}`] : []), `rules-${cfg.device.id}`];
      if (!mine.includes(name)) return;
      try {
        rt.setConfig(withRules(rt.config, loadRules(doc, `published ${name} v${version}`), `published ${name} v${version}`));
        if (rt.config.tariff) store.setUsageContext(usageContext(rt.config.tariff));
        log.child({ component: 'runtime' }).info({ name, version }, 'published rules applied');
      } catch (e) {
        log
          .child({ component: 'runtime' })
          .warn({ name, version, code: isRcError(e) ? e.code : undefined, err: String(e) }, 'published rules refused; keeping the current ones');
      }
    };
    await runtime.start();
  } catch (e) {
    await status?.close();
    if (runtime) await runtime.stop();
    else store.close();
    ownDeriver?.close();
    throw e;
  }
  const rt = runtime;
  return {
    runtime: rt,
    store,
    paths,
    sync,
    async stop() {
      await rt.stop();
      await status?.close();
      ownDeriver?.close();
    },
  };
}
