import { withDevice } from '../../device/config/index.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../device/store/index.js';
import { SyncClient } from '../../device/sync/index.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { busConfig, importText, openDevice, serverJournalCount, startStack, tap, testLogger, type Mode, type Stack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

/**
 * Faults, on a standalone aedes (the engine the server embeds) and on a real
 * Mosquitto, both killable: broker killed mid-snapshot and mid-upload, server
 * restarted, device offline for a day of taps, device killed mid-apply.
 * Afterwards: server count == device count, no duplicates, lists wholly old or new.
 */
describe.each<Mode>(['aedes', 'mosquitto'])('sync faults over %s', (mode) => {
  let stack: Stack;
  const cfg = busConfig('bus-f');
  const children: ChildProcess[] = [];
  const T0 = Date.parse('2026-11-20T06:00:00+03:00');

  beforeAll(async () => {
    stack = await startStack(mode, { publisher: { chunkRecords: 100, maxDeltaRecords: 1000 } });
    await importText(stack, 'cards', cardsCsv(0, 30_000));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await stack?.close();
  });

  it('broker killed and restarted mid-snapshot: the download resumes and the list is whole', async () => {
    const want = stack.server.publisher.version('transit');
    let killed = false;
    const dev = openDevice(stack, 'bus-f1', ['transit']);
    try {
      dev.client.on('progress', (p: { have: number; total: number }) => {
        if (!killed && p.have >= 20) {
          killed = true;
          void stack.broker!.stop().then(() => setTimeout(() => void stack.broker!.restart(), 300));
        }
      });
      const seen: number[] = [];
      const probe = setInterval(() => seen.push(dev.store.entryCount('transit')), 5);
      await waitFor(() => dev.store.listVersion('transit') === want, { timeoutMs: 40_000, what: 'snapshot applied after broker restart' });
      clearInterval(probe);
      expect(killed).toBe(true);
      expect(dev.store.entryCount('transit')).toBe(30_000);
      expect(seen.every((n) => n === 0 || n === 30_000)).toBe(true); // never a partial list
    } finally {
      await dev.close();
    }
  });

  it('broker killed and restarted mid-upload: every tap is stored once', async () => {
    const dev = openDevice(stack, 'bus-f2', ['transit'], { batchSize: 100, windowSize: 300 });
    try {
      await dev.client.stop(); // taps first, offline
      for (let i = 0; i < 3000; i++) tap(dev, withDevice(cfg, { id: 'bus-f2' }), tokenOf(i), T0 + i * 20_000);
      const client = new SyncClient({ ...(dev.client as unknown as { o: ConstructorParameters<typeof SyncClient>[0] }).o });
      let killed = false;
      client.on('acked', () => {
        if (!killed) {
          killed = true;
          void stack.broker!.stop().then(() => setTimeout(() => void stack.broker!.restart(), 300));
        }
      });
      client.start();
      await waitFor(() => dev.store.ackedSeq() === 3000, { timeoutMs: 40_000, what: 'all taps acknowledged after broker restart' });
      await client.stop();
      expect(killed).toBe(true);
      expect(serverJournalCount(stack, 'bus-f2')).toEqual({ n: 3000, distinct: 3000, max: 3000 });
    } finally {
      dev.store.close();
    }
  });

  it('server restarted: the device carries on, taps and lists continue', async () => {
    const dev = openDevice(stack, 'bus-f3', ['transit', 'stoplist']);
    const c3 = withDevice(cfg, { id: 'bus-f3' });
    try {
      await waitFor(() => dev.store.listVersion('transit') === stack.server.publisher.version('transit'), { timeoutMs: 40_000, what: 'initial sync' });
      for (let i = 0; i < 100; i++) tap(dev, c3, tokenOf(i), T0 + i * 60_000);
      await stack.restartServer();
      for (let i = 100; i < 200; i++) tap(dev, c3, tokenOf(i), T0 + i * 60_000);
      dev.client.notify();
      const r = await importText(stack, 'stoplist', `token,reason\n${tokenOf(42)},lost\n`);
      await waitFor(() => dev.store.listVersion('stoplist') === r.versions.stoplist, { timeoutMs: 10_000, what: 'stop-list after server restart' });
      await waitFor(() => dev.store.ackedSeq() === 200, { timeoutMs: 10_000, what: 'journal acknowledged after server restart' });
      expect(serverJournalCount(stack, 'bus-f3')).toEqual({ n: 200, distinct: 200, max: 200 });
      expect(tap(dev, c3, tokenOf(42), T0 + 86_400_000).decision.reason).toBe('stop-list');
    } finally {
      await dev.close();
    }
  });

  it('a device offline for a day of taps uploads them all once when it comes back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-sync-dev-'));
    const store = Store.open(join(dir, 'device.sqlite'), { deviceId: 'bus-f4', synchronous: 'OFF' });
    const c4 = withDevice(cfg, { id: 'bus-f4' });
    const fake = { store } as Parameters<typeof tap>[0];
    for (let i = 0; i < 2880; i++) tap(fake, c4, tokenOf(i % 500), T0 + i * 30_000); // one tap every 30 s for 24 h
    store.close();
    const dev = openDevice(stack, 'bus-f4', ['transit'], {}, dir);
    try {
      await waitFor(() => dev.store.ackedSeq() === 2880, { timeoutMs: 30_000, what: 'day of taps acknowledged' });
      expect(serverJournalCount(stack, 'bus-f4')).toEqual({ n: 2880, distinct: 2880, max: 2880 });
    } finally {
      await dev.close();
    }
  });

  it('device killed mid-apply: the store holds the old or the new list, whole, and then catches up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-sync-dev-'));
    const storePath = join(dir, 'device.sqlite');
    const want = stack.server.publisher.version('transit');
    const pub = join(stack.dataDir, 'signing-key.pub.pem');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '..', 'support', 'sync-device-child.ts'), storePath, join(dir, 'staging'), stack.brokerUrl, pub, 'bus-f5'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error('child never started applying')), 40_000);
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('"ev":"applying"')) {
          clearTimeout(t);
          setTimeout(
            () => {
              child.kill('SIGKILL');
              resolve();
            },
            Math.floor(Math.random() * 40),
          );
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    const store = Store.open(storePath, { deviceId: 'bus-f5' });
    try {
      expect(store.integrityCheck()).toBe('ok');
      const v = store.listVersion('transit');
      expect([0, want]).toContain(v);
      expect(store.entryCount('transit')).toBe(v === 0 ? 0 : 30_000);
      const client = new SyncClient({
        store,
        deviceId: 'bus-f5',
        brokerUrl: stack.brokerUrl,
        scopes: ['transit'],
        serverPublicKey: stack.server.publicKeyPem,
        stagingDir: join(dir, 'staging'),
        log: testLogger(),
      });
      client.start();
      await waitFor(() => store.listVersion('transit') === want, { timeoutMs: 40_000, what: 'caught up after the kill' });
      await client.stop();
      expect(store.entryCount('transit')).toBe(30_000);
    } finally {
      store.close();
    }
  });
});
