import { statfsSync } from 'node:fs';
import mqtt from 'mqtt';
import { z } from 'zod';
import { ErrorCode, RcError, isRcError } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';
import type { Scope } from '../protocol/lists.js';
import { openPkcs11, type TokenDeriver } from '../protocol/token-hsm.js';
import { parseTokenKey, type TokenKey } from '../protocol/token.js';
import { readMirCard } from '../device/emv/read.js';
import { createPeripheral } from '../device/io/factory.js';
import { isDisplay, isTurnstile, type Peripheral } from '../device/io/types.js';
import type { ReaderEvent, ReaderSource } from '../device/reader/types.js';
import { SYSTEM_STATUS_SOCKET, devicePaths, ioPeripheralConfig } from '../device/runtime/device.js';
import { queryStatus } from '../device/runtime/status.js';
import { Store } from '../device/store/index.js';
import { SyncClient, syncOptionsFromConfig } from '../device/sync/index.js';
import { loadDevice, type DeviceState } from './device-dir.js';
import { call } from './http.js';
import { whoAmI } from './ops.js';
import { tlsError } from '../device/sync/mqtt-transport.js';

/**
 * rc-provision check: the technician's self-test. Each item passes or fails
 * with an error code; the command exits non-zero if any fails.
 */
export type CheckId = 'config' | 'disk' | 'server' | 'clock' | 'reader' | 'card' | 'peripherals' | 'broker' | 'sync';
export const CHECK_IDS: readonly CheckId[] = ['config', 'disk', 'server', 'clock', 'reader', 'card', 'peripherals', 'broker', 'sync'];

export interface CheckItem {
  id: CheckId;
  title: string;
  ok: boolean;
  code?: string;
  detail: string;
  ms: number;
}

export interface CheckReport {
  ok: boolean;
  deviceId: string | null;
  items: CheckItem[];
  totalMs: number;
}

export interface CheckOptions {
  dir: string;
  log: Logger;
  skip?: readonly CheckId[];
  /** How long to wait for a card tap. */
  cardTimeoutMs?: number;
  readerTimeoutMs?: number;
  syncTimeoutMs?: number;
  minFreeMb?: number;
  maxClockSkewMs?: number;
  /** Reader source (default: PC/SC through pcscd). */
  source?: () => Promise<ReaderSource>;
  /** Each item as it finishes (the CLI prints it). */
  onItem?: (item: CheckItem) => void;
  /** Prompts for the technician ("tap a card"). */
  onPrompt?: (text: string) => void;
  /** First sync progress: scopes done of total, entries applied so far. */
  onSyncProgress?: (p: { done: number; total: number; scope?: string }) => void;
}

const Health = z.object({ versions: z.record(z.string(), z.number().int()) });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function failure(e: unknown): { code: string; detail: string } {
  if (isRcError(e)) return { code: e.code, detail: e.message };
  return { code: ErrorCode.ProvisionCheckFailed, detail: e instanceof Error ? e.message : String(e) };
}

export async function runCheck(o: CheckOptions): Promise<CheckReport> {
  const t0 = Date.now();
  const items: CheckItem[] = [];
  const skip = new Set(o.skip ?? []);
  const run = async (id: CheckId, title: string, f: () => Promise<string>): Promise<boolean> => {
    if (skip.has(id)) return true;
    const s = Date.now();
    let item: CheckItem;
    try {
      item = { id, title, ok: true, detail: await f(), ms: Date.now() - s };
    } catch (e) {
      item = { id, title, ok: false, ...failure(e), ms: Date.now() - s };
    }
    items.push(item);
    o.onItem?.(item);
    return item.ok;
  };

  let dev: DeviceState | null = null;
  await run('config', 'device config and keys', async () => {
    const loaded = loadDevice(o.dir);
    // the check needs the reader, the peripherals, the store and the broker identity to itself
    const sockets = new Set([devicePaths(loaded.config, `${o.dir}/device.json`).statusSocket, SYSTEM_STATUS_SOCKET]);
    for (const sock of sockets) {
      if (
        await queryStatus(sock, 500).then(
          () => true,
          () => false,
        )
      ) {
        throw new RcError(
          ErrorCode.RuntimeAlreadyRunning,
          `rc-device is running (it answers on ${sock}): stop it first (systemctl stop rc-device), then check again`,
          { socket: sock },
        );
      }
    }
    dev = loaded;
    return `${dev.record.deviceId} (${dev.record.kind}), config validates`;
  });
  const d = dev as DeviceState | null;
  if (!d) return { ok: false, deviceId: null, items, totalMs: Date.now() - t0 };
  const cfg = d.config;
  const paths = devicePaths(cfg, `${o.dir}/device.json`);

  await run('disk', 'free disk space', async () => {
    const s = statfsSync(paths.dataDir);
    const freeMb = Math.floor((s.bavail * s.bsize) / 1024 / 1024);
    const min = o.minFreeMb ?? 200;
    if (freeMb < min) throw new RcError(ErrorCode.ProvisionDiskLow, `${freeMb} MB free in ${paths.dataDir}, need at least ${min} MB`, { freeMb, minMb: min });
    return `${freeMb} MB free`;
  });

  let serverTime: string | null = null;
  await run('server', 'server knows this device', async () => {
    const w = await whoAmI(d);
    serverTime = w.serverTime;
    return `${d.record.server} confirms ${w.deviceId}`;
  });

  await run('clock', 'clock', async () => {
    const now = Date.now();
    if (new Date(now).getUTCFullYear() < 2025)
      throw new RcError(ErrorCode.ProvisionClockSkew, `the clock says ${new Date(now).toISOString()}: not plausible`, {});
    if (!serverTime) return `${new Date(now).toISOString()} (server not reached: not compared)`;
    const skew = now - Date.parse(serverTime);
    const max = o.maxClockSkewMs ?? 60_000;
    if (Math.abs(skew) > max) throw new RcError(ErrorCode.ProvisionClockSkew, `the clock is ${Math.round(skew / 1000)} s off the server's`, { skewMs: skew });
    return `${new Date(now).toISOString()}, ${Math.abs(Math.round(skew))} ms from the server`;
  });

  // reader and card share one reader source
  let source: ReaderSource | null = null;
  const events: ReaderEvent[] = [];
  let wake: (() => void) | null = null;
  const waitEvent = async <T>(pick: () => T | undefined, ms: number): Promise<T | undefined> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = pick();
      if (v !== undefined || Date.now() >= end) return v;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, Math.min(200, Math.max(1, end - Date.now())));
      });
    }
  };
  try {
    const readerOk = await run('reader', 'pcscd and a card reader', async () => {
      if (o.source) source = await o.source();
      else {
        const { PcscReaderSource } = await import('../device/reader/pcsc.js');
        source = await PcscReaderSource.create({ log: o.log.child({ component: 'reader' }) });
      }
      const src = source;
      src.on((e) => {
        events.push(e);
        wake?.();
      });
      src.start();
      const wanted = (cfg.readers ?? []).map((r) => r.name);
      const match = (n: string) => wanted.length === 0 || wanted.some((w) => n.startsWith(w));
      const found = await waitEvent(() => src.readers().find((r) => match(r.name)), o.readerTimeoutMs ?? 5000);
      if (!found) {
        const down = events.some((e) => e.type === 'service-down') && !events.some((e) => e.type === 'service-up' || e.type === 'reader-added');
        if (down) throw new RcError(ErrorCode.PcscUnavailable, 'pcscd does not answer: is it running?', {});
        throw new RcError(
          ErrorCode.ReaderNotFound,
          wanted.length
            ? `no reader named ${wanted.join(' or ')} (present: ${
                src
                  .readers()
                  .map((r) => r.name)
                  .join(', ') || 'none'
              })`
            : 'pcscd runs but no reader is connected',
          {},
        );
      }
      return `${src.readers().length} reader(s): ${src
        .readers()
        .map((r) => r.name)
        .join(', ')}`;
    });

    if (!skip.has('card')) {
      if (!readerOk) {
        const item: CheckItem = { id: 'card', title: 'tap a card', ok: false, code: ErrorCode.ReaderNotFound, detail: 'no reader, no card read', ms: 0 };
        items.push(item);
        o.onItem?.(item);
      } else {
        await run('card', 'tap a card', async () => {
          o.onPrompt?.('tap a card on the reader…');
          const ins = await waitEvent(
            () => events.find((e): e is Extract<ReaderEvent, { type: 'card-inserted' }> => e.type === 'card-inserted'),
            o.cardTimeoutMs ?? 30_000,
          );
          if (!ins) throw new RcError(ErrorCode.ReaderTimeout, `no card was tapped within ${Math.round((o.cardTimeoutMs ?? 30_000) / 1000)} s`, {});
          const pkcs11 = cfg.tokenKey?.pkcs11;
          // the key in the device's token: the check derives there too (and so proves the token opens and holds the key)
          const tokenKey: TokenKey | TokenDeriver = pkcs11
            ? openPkcs11(pkcs11).deriver(cfg.tokenKey?.version ?? 1)
            : parseTokenKey(
                process.env.RC_TOKEN_KEY ?? cfg.tokenKey?.hex ?? '',
                process.env.RC_TOKEN_KEY ? (process.env.RC_TOKEN_KEY_VERSION ?? '1') : (cfg.tokenKey?.version ?? 0),
              );
          let r;
          try {
            r = await readMirCard(ins.channel, { now: new Date(), tokenKey });
          } finally {
            if ('close' in tokenKey) tokenKey.close();
          }
          return `${r.scheme} ${r.maskedPan} (expires ${r.expiry}), read in ${r.ms} ms on ${ins.reader}`;
        });
      }
    }
  } finally {
    const src = source as ReaderSource | null;
    await src?.close().catch(() => undefined);
  }

  await run('peripherals', 'peripherals answer', async () => {
    const list = cfg.peripherals ?? [];
    if (list.length === 0) return 'none configured';
    const out: string[] = [];
    const problems: RcError[] = [];
    for (const pc of list) {
      let p: Peripheral;
      try {
        p = createPeripheral(ioPeripheralConfig(pc), { log: o.log });
      } catch (e) {
        problems.push(isRcError(e) ? e : new RcError(ErrorCode.ConfigInvalid, String(e)));
        continue;
      }
      await p.start();
      try {
        // start() opens in the background: give the port a moment
        for (const end = Date.now() + 3000; !p.health().portOpen && Date.now() < end;) await sleep(50);
        if (!p.health().portOpen)
          throw new RcError(
            p.health().lastError?.code ?? ErrorCode.IoPortUnavailable,
            `${p.name}: the serial port ${p.port} does not open (${p.health().lastError?.message ?? 'no answer'})`,
            { peripheral: p.name },
          );
        const parts: string[] = [];
        if (isDisplay(p)) {
          const shown = await p.show({ text: 'Проверка связи\nSelf-test', light: 'green', beep: 'short' });
          if (!shown)
            throw new RcError(p.health().lastError?.code ?? ErrorCode.IoNoAck, `${p.name}: the display did not acknowledge the test text`, {
              peripheral: p.name,
            });
          parts.push('display shows the test text');
        }
        if (isTurnstile(p)) {
          const opening = p.openForEntry();
          await sleep(200);
          const closed = await p.close();
          await opening;
          const h = p.health();
          if (!closed || h.counters.failures > 0)
            throw new RcError(
              h.lastError?.code ?? ErrorCode.IoNoAck,
              `${p.name}: the gate did not open and close (${h.lastError?.message ?? 'no acknowledgement'})`,
              { peripheral: p.name },
            );
          parts.push('gate opens and closes');
        }
        out.push(`${p.name}: ${parts.join(', ')}`);
      } catch (e) {
        problems.push(isRcError(e) ? e : new RcError(ErrorCode.IoNoAck, String(e)));
      } finally {
        await p.stop();
      }
    }
    if (problems.length) throw new RcError(problems[0]!.code, problems.map((x) => x.message).join('; '), {});
    return out.join('; ');
  });

  const s = cfg.sync;
  const brokerOk = await run('broker', 'broker accepts the credentials', async () => {
    if (!s) throw new RcError(ErrorCode.ConfigInvalid, 'the config has no sync section', { path: 'sync' });
    const c = await mqtt
      .connectAsync(s.brokerUrl, {
        protocolVersion: 4,
        clientId: s.deviceId ?? cfg.device.id,
        username: s.username,
        password: process.env.RC_SYNC_PASSWORD ?? s.password,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        clean: true,
        // mqtts: the CA pinned at enrolment, as rc-device run connects
        ...(s.ca ? { ca: s.ca, rejectUnauthorized: true, ...(s.servername ? { servername: s.servername } : {}) } : {}),
      })
      .catch((e: Error & { code?: number | string }) => {
        const tls = typeof e.code === 'string' ? tlsError(e as NodeJS.ErrnoException, s.brokerUrl) : e;
        if (tls !== e) throw tls;
        if (e.code === 4 || e.code === 5 || /not authori[sz]ed|bad user/i.test(e.message))
          throw new RcError(ErrorCode.ProvisionBrokerRefused, `the broker refused this device's credentials (${e.message})`, { broker: s.brokerUrl });
        throw new RcError(ErrorCode.SyncBrokerUnavailable, `cannot reach the broker at ${s.brokerUrl} (${e.message})`, { broker: s.brokerUrl });
      });
    await c.endAsync(true).catch(() => undefined);
    return `${s.brokerUrl} as ${s.username ?? '(anonymous)'}`;
  });

  if (!skip.has('sync')) {
    if (!brokerOk) {
      const item: CheckItem = {
        id: 'sync',
        title: 'first sync',
        ok: false,
        code: ErrorCode.SyncBrokerUnavailable,
        detail: 'no broker connection, no sync',
        ms: 0,
      };
      items.push(item);
      o.onItem?.(item);
    } else {
      await run('sync', 'first sync', () => firstSync(d, paths, o));
    }
  }
  return { ok: items.every((i) => i.ok), deviceId: d.record.deviceId, items, totalMs: Date.now() - t0 };
}

/** Connect the device's own sync client and wait until every scope holds the server's current version. */
export async function firstSync(
  d: DeviceState,
  paths: { dataDir: string; storePath: string },
  o: Pick<CheckOptions, 'log' | 'syncTimeoutMs' | 'onSyncProgress'>,
): Promise<string> {
  const cfg = d.config;
  let targets: Record<string, number> = {};
  try {
    targets = (await call(d.record.server, 'GET', '/v1/health', Health, undefined, 15_000, d.record.serverCa ? { ca: d.record.serverCa } : undefined)).versions;
  } catch (e) {
    if (!isRcError(e, ErrorCode.ProvisionServerUnreachable)) throw e;
    // no HTTP route to the server: wait for the manifests alone
  }
  const store = Store.open(paths.storePath, { deviceId: cfg.device.id });
  const opts = syncOptionsFromConfig(cfg, store, paths.dataDir, o.log.child({ component: 'sync' }));
  if (process.env.RC_SYNC_PASSWORD) opts.password = process.env.RC_SYNC_PASSWORD;
  const scopes = opts.scopes as Scope[];
  const client = new SyncClient({ ...opts, reconnectMinMs: 200, reconnectMaxMs: 2000, requestAfterMs: 1500 });
  const t0 = Date.now();
  const want = (sc: Scope) => targets[sc] ?? 0;
  const done = () => scopes.filter((sc) => store.listVersion(sc) >= want(sc)).length;
  const refused: string[] = [];
  client.on('refused', (r: { code: string }) => refused.push(r.code));
  client.on('applied', (a: { scope: string }) => o.onSyncProgress?.({ done: done(), total: scopes.length, scope: a.scope }));
  try {
    client.start();
    o.onSyncProgress?.({ done: done(), total: scopes.length });
    const limit = o.syncTimeoutMs ?? 120_000;
    while (done() < scopes.length) {
      if (Date.now() - t0 > limit) {
        throw new RcError(
          ErrorCode.ProvisionSyncTimeout,
          `lists not current after ${Math.round(limit / 1000)} s: ${scopes
            .filter((sc) => store.listVersion(sc) < want(sc))
            .map((sc) => `${sc} ${store.listVersion(sc)}/${want(sc)}`)
            .join(', ')}${refused.length ? ` (refused: ${[...new Set(refused)].join(', ')})` : ''}`,
          { refused: [...new Set(refused)] },
        );
      }
      await sleep(50);
    }
    // let the status reach the server before going
    await sleep(100);
    return `${scopes.map((sc) => `${sc} v${store.listVersion(sc)} (${store.entryCount(sc)} entries)`).join(', ')} in ${Date.now() - t0} ms`;
  } finally {
    await client.stop();
    store.close();
  }
}
