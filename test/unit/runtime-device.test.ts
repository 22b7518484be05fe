/**
 * startDevice (what `rc-device run` builds from a config), in process: the
 * store, the sync client against a real sync-server with its embedded broker,
 * the status socket, and rules the server publishes while the device runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../device/config/load.js';
import { VirtualReaderSource } from '../../device/reader/virtual.js';
import { devicePaths, startDevice, type RunningDevice } from '../../device/runtime/device.js';
import { queryStatus } from '../../device/runtime/status.js';
import { ErrorCode } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { startServer, type RunningServer } from '../../sync-server/server.js';
import { logSink, mirSpec, PAN } from './runtime-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-rt-dev-'));
let server: RunningServer;
let dev: RunningDevice;
let source: VirtualReaderSource;
let logLines: string[] = [];

async function* linesOf(t: string): AsyncIterable<string> {
  yield t; // the CSV text in one chunk (the parser streams any chunking)
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  await vi.waitFor(
    () => {
      if (!cond()) throw new Error(`timed out waiting for ${what}`);
    },
    { timeout: ms, interval: 20 },
  );
}

function tap(reader: string, spec: ReturnType<typeof mirSpec>) {
  const p = dev.runtime.nextTap();
  source.present(reader, spec);
  return p.finally(() => source.remove(reader));
}

const cfgRaw = (sync: { brokerUrl: string; serverPublicKey: string }) => ({
  schema: 1,
  device: { id: 'bus-dev-unit', kind: 'bus', route: '7' },
  tariff: { routes: { '7': { fullFareKopecks: 3500 } }, repeatWindowSec: 0 },
  sync,
  runtime: { dataDir: join(dir, 'device') },
});

beforeAll(async () => {
  const { log, lines } = logSink();
  logLines = lines;
  server = await startServer({ dataDir: join(dir, 'server'), mqttPort: 0, httpPort: 0, tokenKey: DEV_TOKEN_KEY, log });
  await server.api.importCsv('stoplist', linesOf(`pan,expiry,reason\n${PAN.stopped},2029-06,lost`), false);
  source = new VirtualReaderSource(['R']);
  dev = await startDevice({
    config: loadConfig(cfgRaw({ brokerUrl: server.mqttUrl, serverPublicKey: server.publicKeyPem })),
    log,
    source,
    tokenKey: DEV_TOKEN_KEY,
    syncOverrides: { reconnectMinMs: 100, requestAfterMs: 300 },
  });
});

afterAll(async () => {
  await dev?.stop();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('startDevice: a device from its config', () => {
  it('syncs its lists from the server, serves its status socket, and decides with the synced stop-list', async () => {
    await until(() => dev.store.listVersion('stoplist') > 0 && dev.runtime.status().sync.connected, 15_000, 'stop-list synced');
    const s = await queryStatus(dev.paths.statusSocket);
    expect(s).toMatchObject({ device: { id: 'bus-dev-unit' }, sync: { configured: true, connected: true }, readers: [{ name: 'R' }] });
    expect(s.lists.find((l) => l.scope === 'stoplist')?.version).toBeGreaterThan(0);
    expect(await tap('R', mirSpec(PAN.stopped))).toMatchObject({ result: 'deny', reason: 'stop-list' });
  });

  it('a second device on the same status socket is refused with runtime.already-running', async () => {
    await expect(
      startDevice({ config: dev.runtime.config, log: logSink().log, source: new VirtualReaderSource([]), tokenKey: DEV_TOKEN_KEY }),
    ).rejects.toMatchObject({ code: ErrorCode.RuntimeAlreadyRunning });
  });

  it('rules the server publishes as rules-bus replace the tariff while running; another name does not', async () => {
    expect(await tap('R', mirSpec(PAN.unknown))).toMatchObject({ fareKopecks: 3500 });
    await server.api.setConfig('rules-school-9', { schema: 1, tariff: { routes: { '7': { fullFareKopecks: 9900 } } } });
    await server.api.setConfig('rules-bus', { schema: 1, tariff: { routes: { '7': { fullFareKopecks: 4000 } }, repeatWindowSec: 0 } });
    await until(() => dev.runtime.config.tariff?.routes['7']?.fullFareKopecks === 4000, 15_000, 'published tariff applied');
    expect(await tap('R', mirSpec(PAN.pensioner))).toMatchObject({ reason: 'full-fare', fareKopecks: 4000 });
  });

  it('a published rules document that does not validate is refused and the rules stay', async () => {
    await server.api.setConfig('rules-bus', { schema: 1, tariff: { routes: {} } }).catch(() => undefined);
    await until(() => logLines.some((l) => l.includes('published rules refused')), 15_000, 'the device refusing the published rules');
    expect(dev.runtime.config.tariff?.routes['7']?.fullFareKopecks).toBe(4000);
  });

  it('paths: config runtime section first, then RC_DATA_DIR / systemd STATE_DIRECTORY and RUNTIME_DIRECTORY, then the config dir', () => {
    const base = loadConfig({ schema: 1, device: { id: 'x', kind: 'bus', route: '7' }, tariff: { routes: { '7': { fullFareKopecks: 1 } } } });
    expect(devicePaths(base, '/etc/rc/device.json', {})).toEqual({
      dataDir: '/etc/rc',
      storePath: '/etc/rc/device.sqlite',
      statusSocket: '/etc/rc/rc-device.sock',
    });
    expect(devicePaths(base, '/etc/rc/device.json', { STATE_DIRECTORY: '/var/lib/rc-device', RUNTIME_DIRECTORY: '/run/rc-device' })).toEqual({
      dataDir: '/var/lib/rc-device',
      storePath: '/var/lib/rc-device/device.sqlite',
      statusSocket: '/run/rc-device/rc-device.sock',
    });
    const own = { ...base, runtime: { dataDir: 'data', statusSocket: '/tmp/x.sock' } };
    expect(devicePaths(own, '/etc/rc/device.json', { STATE_DIRECTORY: '/var/lib/rc-device' })).toEqual({
      dataDir: '/etc/rc/data',
      storePath: '/etc/rc/data/device.sqlite',
      statusSocket: '/tmp/x.sock',
    });
  });
});
