/**
 * rc-provision check's verdicts, with a fake reader source (the layer below)
 * and a server/broker that cannot be reached: each item fails with its own
 * code, the card item reads a virtual card in process and shows the masked PAN.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ReaderEvent, ReaderInfo, ReaderSource } from '../../device/reader/types.js';
import { openInProcessCard } from '../../device/vcard/inprocess.js';
import { quietLogger } from '../support/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { runCheck, type CheckReport } from '../../provisioning/check.js';
import { generateDeviceKeys, privatePem, rawPublic } from '../../protocol/sealing.js';
import { files, writeAllOrNothing, type ProvisionRecord } from '../../provisioning/device-dir.js';
import { PAN as PANS } from '../support/pans.js';

const tmp = mkdtempSync(join(tmpdir(), 'rc-prov-check-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const log = quietLogger();
const PAN = PANS.pensioner;

/** A provisioned directory whose server and broker are nowhere (port 1). */
function provisionedDir(name: string, extra: Record<string, unknown> = {}): string {
  const dir = join(tmp, name);
  const k = generateDeviceKeys();
  const id = 'canteen-0123456789';
  const record: ProvisionRecord = {
    deviceId: id,
    kind: 'canteen',
    server: 'http://127.0.0.1:1',
    school: '3',
    route: null,
    vehicle: null,
    direction: null,
    brokerUrl: 'mqtt://127.0.0.1:1',
    scopes: ['school:3', 'stoplist'],
    enrolledAt: new Date().toISOString(),
    rotatedAt: null,
    identityKey: rawPublic(k.identity),
    boxKey: rawPublic(k.box),
    serverKeyFingerprint: '0'.repeat(16),
    tokenKeyVersion: 0,
  };
  const config = {
    schema: 1,
    device: { id, kind: 'canteen', schoolId: '3' },
    canteen: { meals: [{ kind: 'lunch', from: '11:00', to: '14:00' }] },
    sync: { brokerUrl: 'mqtt://127.0.0.1:1', deviceId: id, username: id, password: 'x'.repeat(32), serverPublicKey: 'MCowBQYDK2VwAyEA' + 'A'.repeat(43) + '=' },
    tokenKey: { version: 0, hex: DEV_TOKEN_KEY.key.toString('hex') },
    store: { path: join(dir, 'device.sqlite') },
    ...extra,
  };
  const f = files(dir);
  writeAllOrNothing(dir, [
    { file: f.identity, text: privatePem(k.identity) },
    { file: f.box, text: privatePem(k.box) },
    { file: f.provision, text: JSON.stringify(record) },
    { file: f.config, text: JSON.stringify(config) },
  ]);
  return dir;
}

/** A reader source with scripted events, played as soon as the check starts the source (no timers). */
function fakeSource(script: (emit: (e: ReaderEvent) => void, readers: ReaderInfo[]) => void): () => Promise<ReaderSource> {
  return async () => {
    const listeners = new Set<(e: ReaderEvent) => void>();
    const readers: ReaderInfo[] = [];
    const emit = (e: ReaderEvent) => {
      if (e.type === 'reader-added') readers.push({ name: e.reader, cardPresent: false });
      for (const l of listeners) l(e);
    };
    return {
      start: () => setImmediate(() => script(emit, readers)),
      on: (l) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      readers: () => readers,
      close: async () => undefined,
    };
  };
}

const item = (r: CheckReport, id: string) => r.items.find((i) => i.id === id);

describe('rc-provision check', () => {
  it('a tapped Mir card shows its scheme and masked PAN; unreachable server and broker fail with their codes', async () => {
    const prompts: string[] = [];
    let tapCard = (): void => undefined;
    const r = await runCheck({
      dir: provisionedDir('a'),
      log,
      readerTimeoutMs: 1000,
      cardTimeoutMs: 2000,
      onPrompt: (t) => {
        prompts.push(t);
        tapCard(); // the card is tapped when the check asks for it
      },
      source: fakeSource((emit) => {
        emit({ type: 'reader-added', reader: 'Test PCD 00 00' });
        const channel = openInProcessCard({ kind: 'emv', pan: PAN, expiry: '2029-06', psn: '01' });
        tapCard = () => emit({ type: 'card-inserted', reader: 'Test PCD 00 00', atr: new Uint8Array([0x3b]), channel });
      }),
    });
    expect(r.ok).toBe(false);
    expect(item(r, 'config')).toMatchObject({ ok: true });
    expect(item(r, 'disk')).toMatchObject({ ok: true });
    expect(item(r, 'reader')).toMatchObject({ ok: true, detail: '1 reader(s): Test PCD 00 00' });
    expect(item(r, 'card')).toMatchObject({ ok: true });
    expect(item(r, 'card')!.detail).toMatch(/^mir 220070\*{6}0017 \(expires 2029-06\)/);
    expect(JSON.stringify(r)).not.toContain(PAN);
    expect(prompts).toEqual(['tap a card on the reader…']);
    expect(item(r, 'peripherals')).toMatchObject({ ok: true, detail: 'none configured' });
    expect(item(r, 'server')).toMatchObject({ ok: false, code: 'provision.server-unreachable' });
    expect(item(r, 'clock')).toMatchObject({ ok: true });
    expect(item(r, 'broker')).toMatchObject({ ok: false, code: 'sync.broker-unavailable' });
    expect(item(r, 'sync')).toMatchObject({ ok: false, code: 'sync.broker-unavailable' });
  });

  it('no pcscd: reader.pcsc-unavailable, and the card item fails too; no tap: reader.timeout', async () => {
    const down = await runCheck({
      dir: provisionedDir('b'),
      log,
      skip: ['server', 'broker', 'sync'],
      readerTimeoutMs: 300,
      source: fakeSource((emit) => emit({ type: 'service-down', error: 'PC/SC service not running' })),
    });
    expect(item(down, 'reader')).toMatchObject({ ok: false, code: 'reader.pcsc-unavailable' });
    expect(item(down, 'card')).toMatchObject({ ok: false });
    const noTap = await runCheck({
      dir: provisionedDir('c'),
      log,
      skip: ['server', 'broker', 'sync'],
      cardTimeoutMs: 300,
      source: fakeSource((emit) => emit({ type: 'reader-added', reader: 'Test PCD 00 00' })),
    });
    expect(item(noTap, 'reader')).toMatchObject({ ok: true });
    expect(item(noTap, 'card')).toMatchObject({ ok: false, code: 'reader.timeout' });
  });

  it('a configured reader that is not there is reader.not-found, naming what is present', async () => {
    const r = await runCheck({
      dir: provisionedDir('d', { readers: [{ name: 'ACS ACR1252' }] }),
      log,
      skip: ['server', 'card', 'broker', 'sync'],
      readerTimeoutMs: 300,
      source: fakeSource((emit) => emit({ type: 'reader-added', reader: 'Test PCD 00 00' })),
    });
    expect(item(r, 'reader')).toMatchObject({ ok: false, code: 'reader.not-found' });
    expect(item(r, 'reader')!.detail).toContain('present: Test PCD 00 00');
  });

  it('a missing or hand-broken config stops the check at the first item with its code', async () => {
    const none = await runCheck({ dir: join(tmp, 'nothing'), log });
    expect(none.items).toEqual([expect.objectContaining({ id: 'config', ok: false, code: 'provision.not-provisioned' })]);
    const bad = await runCheck({ dir: provisionedDir('e', { device: { id: 'x', kind: 'canteen' } }), log });
    expect(bad.items).toEqual([expect.objectContaining({ id: 'config', ok: false, code: 'config.invalid' })]);
  });

  it('a data directory with less free space than required is provision.disk-low', async () => {
    const r = await runCheck({ dir: provisionedDir('f'), log, skip: ['server', 'clock', 'reader', 'card', 'peripherals', 'broker', 'sync'], minFreeMb: 1e12 });
    expect(item(r, 'disk')).toMatchObject({ ok: false, code: 'provision.disk-low' });
  });
});
