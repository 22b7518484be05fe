import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../device/store/index.js';
import { SyncClient } from '../../device/sync/index.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { syntheticPan, syntheticPsn } from '../support/pans.js';
import { busConfig, tap, testLogger, type Device } from '../support/sync-harness.js';
import { onPostgres, openTestRegistry, registryContents, testDatabaseArgs } from '../support/test-db.js';
import { timeWaitFor, waitFor } from '../support/wait.js';
import { freePort, waitPort } from '../support/rig/broker.js';

/**
 * End to end through the real programs: `rc-sync-server start` as a child,
 * imports through `rc-sync-server import` (the CLI over HTTP), a device (real
 * store + sync client) syncs, taps get their benefits, the journal reaches the
 * server each tap once, and a stop-listed card is refused within 1 s.
 */
const CLI = join(import.meta.dirname, '..', '..', 'sync-server', 'cli.ts');
const T0 = Date.parse('2026-11-24T08:00:00+03:00');

/** The running server's admin token file (start writes it into its data dir); the CLI runs below use it. */
let tokenFile = '';
function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, RC_LOG_LEVEL: 'warn', RC_API_TOKEN_FILE: tokenFile },
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('sync end to end through rc-sync-server', () => {
  let server: ChildProcess;
  let dir: string;
  let url: string;
  let mqttPort: number;
  let dev: Device;
  const cfg = busConfig('bus-e2e');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rc-e2e-'));
    tokenFile = join(dir, 'data', 'admin.token');
    mqttPort = await freePort();
    const httpPort = await freePort();
    url = `http://127.0.0.1:${httpPort}`;
    server = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'start',
        '--dev-token-key', // the public development key: tests only
        '--data',
        join(dir, 'data'),
        '--mqtt-port',
        String(mqttPort),
        '--http-port',
        String(httpPort),
        '--allow-anonymous-devices',
        ...testDatabaseArgs(['--data', join(dir, 'data')]),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, RC_LOG_LEVEL: 'warn' },
      },
    );
    await waitPort(httpPort, 20_000);
    writeFileSync(join(dir, 'cards.csv'), cardsCsv(0, 1000));
    writeFileSync(join(dir, 'benefits.csv'), benefitsCsv(0, 500, 'pensioner') + benefitsCsv(500, 250, 'schoolchild').split('\n').slice(1).join('\n'));
  });
  afterAll(async () => {
    if (dev) {
      await dev.client.stop();
      dev.store.close();
    }
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => {
        server.once('exit', r);
        setTimeout(() => server.kill('SIGKILL'), 5000).unref();
      });
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports cards and benefits for 1,000 people; a bad file is rejected whole with its line', () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, `person_id,pan,psn,expiry\nq1,${syntheticPan(5000)},${syntheticPsn(1)},2030-01\nq2,${syntheticPan(5001)},00,2030-14\n`);
    const r0 = cli(['import', 'cards', bad, '--server', url, '--json']);
    expect(r0.code).toBe(1);
    const e = JSON.parse(r0.out) as { error: { code: string; context: { report: { errors: { line: number; column: string }[] } } } };
    expect(e.error.code).toBe('server.import-invalid');
    expect(e.error.context.report.errors).toEqual([expect.objectContaining({ line: 3, column: 'expiry' })]);
    expect(r0.out).not.toContain(syntheticPan(5000));

    const r1 = cli(['import', 'cards', join(dir, 'cards.csv'), '--server', url, '--json']);
    expect(r1.code, r1.err).toBe(0);
    expect(JSON.parse(r1.out)).toMatchObject({ report: { rows: 1000, applied: 1000 } });
    const r2 = cli(['import', 'benefits', join(dir, 'benefits.csv'), '--server', url, '--json']);
    expect(JSON.parse(r2.out)).toMatchObject({ report: { rows: 750, applied: 750 }, versions: { transit: 2 } });
    // the PAN is not stored anywhere in the data dir
    if (onPostgres) {
      const db = openTestRegistry(join(dir, 'data')); // the server's database, another connection
      try {
        expect(registryContents(db, join(dir, 'data'))).not.toContain(syntheticPan(17));
      } finally {
        db.close();
      }
    } else expect(readFileSync(join(dir, 'data', 'registry.sqlite')).includes(Buffer.from(syntheticPan(17)))).toBe(false);
  });

  it('a device syncs, replayed taps get their benefits, and each tap reaches the server once', async () => {
    const pub = readFileSync(join(dir, 'data', 'signing-key.pub.pem'), 'utf8');
    const ddir = mkdtempSync(join(dir, 'dev-'));
    const store = Store.open(join(ddir, 'device.sqlite'), { deviceId: 'bus-e2e', synchronous: 'OFF' });
    const client = new SyncClient({
      store,
      deviceId: 'bus-e2e',
      brokerUrl: `mqtt://127.0.0.1:${mqttPort}`,
      scopes: ['transit', 'stoplist'],
      serverPublicKey: pub,
      stagingDir: join(ddir, 'st'),
      log: testLogger(),
    });
    client.start();
    dev = { id: 'bus-e2e', dir: ddir, store, client, refused: [], close: async () => undefined };
    await waitFor(() => store.listVersion('transit') === 2, { timeoutMs: 15_000, what: 'lists synced' });
    expect(store.entryCount('transit')).toBe(1000);
    const results = [];
    for (let i = 0; i < 1000; i += 10) results.push({ i, d: tap(dev, cfg, tokenOf(i), T0 + i * 60_000).decision });
    for (const { i, d } of results) {
      if (i < 500) expect(d).toMatchObject({ result: 'allow', fareKopecks: 0, benefit: 'pensioner' });
      else if (i < 750) expect(d).toMatchObject({ result: 'allow', fareKopecks: 1750, benefit: 'schoolchild' });
      else expect(d).toMatchObject({ result: 'allow', fareKopecks: 3500, benefit: null });
    }
    client.notify();
    await waitFor(() => store.ackedSeq() === 100, { timeoutMs: 10_000, what: 'journal acknowledged' });
    const j = JSON.parse(cli(['journal', '--device', 'bus-e2e', '--json', '--server', url]).out) as { entries: { seq: number; benefit: string | null }[] };
    expect(j.entries.map((e) => e.seq)).toEqual(Array.from({ length: 100 }, (_, k) => k + 1));
    expect(j.entries.filter((e) => e.benefit === 'pensioner')).toHaveLength(50);
    const s = JSON.parse(cli(['status', '--json', '--server', url]).out) as {
      devices: { id: string; online: boolean; lastSeen: string; lists: unknown; backlog: number }[];
    };
    expect(s.devices).toEqual([
      expect.objectContaining({ id: 'bus-e2e', online: true, backlog: 0, lists: { transit: { device: 2, current: 2 }, stoplist: { device: 0, current: 0 } } }),
    ]);
  });

  it('a card put on the stop-list by PAN is refused by the device within 1 s of the import', async () => {
    const f = join(dir, 'stop.csv');
    writeFileSync(f, `pan,expiry,reason\n${syntheticPan(3)},2030-12,lost\n`);
    const r = cli(['import', 'stoplist', f, '--server', url, '--json']);
    expect(r.code, r.err).toBe(0);
    // measured from the moment the import command returned (the server has committed and published)
    const ms = await timeWaitFor(() => dev.store.listVersion('stoplist') === 1, { timeoutMs: 1000, what: 'stop-list on the device within 1 s' });
    expect(ms).toBeLessThan(1000);
    expect(tap(dev, cfg, tokenOf(3), T0 + 86_400_000).decision).toMatchObject({ result: 'deny', reason: 'stop-list' });
  });
});
