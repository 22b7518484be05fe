import { withDevice } from '../../device/config/index.js';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { encodeRecords } from '../../protocol/wire/codec.js';
import { encodeChunk, sealDelta, sealManifest, splitChunks } from '../../protocol/wire/chunking.js';
import { generateSigningKey, sha256Hex } from '../../protocol/wire/envelope.js';
import { topics } from '../../protocol/wire/topics.js';
import { MAX_LIST_MESSAGE } from '../../protocol/wire/messages.js';
import { benefitsCsv, cardsCsv, tokenOf } from './registry-csv.js';
import {
  busConfig,
  importText,
  openDevice,
  serverJournalCount,
  startStack,
  tap,
  type BrokerDevice,
  type Device,
  type Mode,
  type Stack,
} from './sync-harness.js';
import { waitFor } from './wait.js';

/** The devices the sync suite opens, for a broker with per-device users and ACLs (the cluster). */
export const SYNC_SUITE_DEVICES: readonly BrokerDevice[] = [
  { id: 'bus-it-1', scopes: ['transit', 'stoplist'] },
  { id: 'bus-it-frozen', scopes: ['transit'] },
  { id: 'bus-rogue', scopes: [] },
];

/** A journal batch of one free tap that says it comes from `device`: what a rogue device publishes to pass as another. */
export function journalBatchOf(device: string): Buffer {
  const entry = {
    seq: 1,
    time: new Date().toISOString(),
    token: tokenOf(1),
    kind: 'bus',
    result: 'allow',
    reason: 'ok',
    fareKopecks: 0,
    benefit: null,
    lists: {},
  };
  return Buffer.from(JSON.stringify({ device, entries: [entry] }));
}

/**
 * The sync suite, one per broker: the server's embedded aedes, a real Mosquitto (test/integration/sync.test.ts)
 * and the clustered NATS (test/integration/cluster-sync.test.ts). Call it inside a describe.
 */
export function syncSuite(mode: Mode): void {
  let stack: Stack;
  let dev: Device;
  const cfg = busConfig('bus-it-1');
  const T0 = Date.parse('2026-11-24T09:00:00+03:00');

  beforeAll(async () => {
    stack = await startStack(mode, { publisher: { chunkRecords: 64 }, chargeRetry: { attempts: 1, overDays: 0 } }, SYNC_SUITE_DEVICES); // stop-list at the first decline
    await importText(stack, 'cards', cardsCsv(0, 300));
    await importText(stack, 'benefits', benefitsCsv(0, 100, 'pensioner'));
    dev = openDevice(stack, 'bus-it-1');
  });
  afterAll(async () => {
    await dev?.close();
    await stack?.close();
  });

  it('a new device catches up to the current transit list and holds every entry', async () => {
    const want = stack.server.publisher.version('transit');
    await waitFor(() => dev.store.listVersion('transit') === want, { timeoutMs: 15_000, what: 'transit list applied' });
    expect(dev.store.entryCount('transit')).toBe(300);
    expect(dev.store.readView(tokenOf(5)).transit).toMatchObject({ benefits: [expect.objectContaining({ category: 'pensioner' })] });
  });

  it('a later import arrives as a delta and its taps get the benefit', async () => {
    const r = await importText(stack, 'benefits', benefitsCsv(200, 10, 'disabled'));
    await waitFor(() => dev.store.listVersion('transit') === r.versions.transit, { timeoutMs: 5000, what: 'delta applied' });
    const d = tap(dev, cfg, tokenOf(201), T0);
    expect(d.decision).toMatchObject({ result: 'allow', fareKopecks: 0, benefit: 'disabled' });
  });

  it('a stop-listed card is refused by the device within 1 s of the import', async () => {
    const token = tokenOf(7);
    expect(tap(dev, cfg, token, T0 + 60_000).decision.result).toBe('allow');
    const t0 = Date.now();
    const r = await importText(stack, 'stoplist', `token,reason\n${token},stolen\n`);
    await waitFor(() => dev.store.listVersion('stoplist') === r.versions.stoplist, { timeoutMs: 1000, what: 'stop-list applied within 1 s' });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(tap(dev, cfg, token, T0 + 120_000).decision).toMatchObject({ result: 'deny', reason: 'stop-list' });
  });

  it('every tap reaches the server once and is acknowledged', async () => {
    for (let i = 0; i < 120; i++) tap(dev, cfg, tokenOf(i % 300), T0 + 3_600_000 + i * 600_000);
    dev.client.notify();
    const last = dev.store.lastSeq();
    await waitFor(() => dev.store.ackedSeq() === last, { timeoutMs: 10_000, what: 'journal acknowledged' });
    expect(serverJournalCount(stack, 'bus-it-1')).toEqual({ n: last, distinct: last, max: last });
    expect(dev.store.journalBacklog()).toBe(0);
  });

  it('the server shows the device online with its list versions and backlog', async () => {
    await waitFor(
      () => {
        const s = stack.server.api.status() as {
          devices: { id: string; online: boolean; backlog: number; lists: Record<string, { device: number; current: number }> }[];
        };
        const d = s.devices.find((x) => x.id === 'bus-it-1');
        return !!d && d.online && d.backlog === 0 && d.lists.transit?.device === d.lists.transit?.current;
      },
      { timeoutMs: 5000, what: 'status online and current' },
    );
  });

  it('a declined full-fare charge puts the card on the stop-list; a repayment takes it off', async () => {
    const token = tokenOf(250); // no benefit: full fare
    stack.server.api.chargingDecline([token]);
    const before = dev.store.listVersion('stoplist');
    expect(tap(dev, cfg, token, T0 + 7_200_000 * 20).decision).toMatchObject({ result: 'allow', fareKopecks: 3500 });
    dev.client.notify();
    await waitFor(() => dev.store.listVersion('stoplist') > before, { timeoutMs: 10_000, what: 'stop-list after declined charge' });
    expect(tap(dev, cfg, token, T0 + 7_200_000 * 21).decision).toMatchObject({ result: 'deny', reason: 'stop-list' });
    const v = dev.store.listVersion('stoplist');
    expect(await stack.server.api.repay(token)).toMatchObject({ unblocked: true });
    await waitFor(() => dev.store.listVersion('stoplist') > v, { timeoutMs: 5000, what: 'stop-list after repayment' });
    expect(tap(dev, cfg, token, T0 + 7_200_000 * 22).decision.result).toBe('allow');
  });

  it('a journal batch claiming another device id is refused; nothing is stored for either id', async () => {
    const creds = stack.deviceConnect('bus-rogue'); // its own user where the broker has per-device users
    const rogue = await mqtt.connectAsync(stack.brokerUrl, {
      protocolVersion: 4,
      clientId: 'bus-rogue',
      ...(creds.username !== undefined ? { username: creds.username, password: creds.password } : {}),
    });
    try {
      // its own topic, another id in the payload: the server refuses it
      await rogue.publishAsync(topics.journal('bus-rogue'), journalBatchOf('bus-victim'), { qos: 1 });
      const handled = (topic: string) => stack.logs.records().some((r) => r.topic === topic);
      await waitFor(() => handled(topics.journal('bus-rogue')), { timeoutMs: 5000, what: "the server's verdict on the rogue batch" });
      // another device's topic: the embedded broker refuses it (client id ≠ topic id); on Mosquitto the ACL does (provisioning)
      if (mode === 'embedded') {
        const p = rogue.publishAsync(topics.journal('bus-victim'), journalBatchOf('bus-victim'), { qos: 1 }).catch(() => undefined);
        const dropped = new Promise<void>((r) => rogue.once('close', () => r())); // aedes drops a client that publishes where it may not
        await Promise.race([p, dropped]);
        await waitFor(() => handled(topics.journal('bus-victim')), { timeoutMs: 5000, what: "the broker's verdict on the forged topic" });
      }
      expect(serverJournalCount(stack, 'bus-victim').n).toBe(0);
      expect(serverJournalCount(stack, 'bus-rogue').n).toBe(0);
    } finally {
      await rogue.endAsync(true);
    }
  });

  it('a tariff published with config set reaches the device, signed', async () => {
    const got: { name: string; version: number; doc: unknown }[] = [];
    dev.client.on('config', (c: { name: string; version: number }) => got.push({ ...c, doc: null }));
    const r = await stack.server.api.setConfig('rules', { schema: 1, tariff: cfg.tariff });
    await waitFor(() => got.some((g) => g.version === r.version), { timeoutMs: 5000, what: 'config on the device' });
    expect(got.at(-1)).toMatchObject({ name: 'rules', version: r.version });
  });

  it('a device without fresh lists for longer than the manifest expiry warns sync.list-frozen and keeps deciding', async () => {
    let clock = Date.now();
    const d2 = openDevice(stack, 'bus-it-frozen', ['transit'], { now: () => new Date(clock) });
    try {
      await waitFor(() => d2.store.listVersion('transit') === stack.server.publisher.version('transit'), { timeoutMs: 10_000, what: 'synced' });
      expect(d2.client.checkFrozen()).toEqual([]);
      clock += 8 * 86_400_000; // manifests are valid 7 days
      expect(d2.client.checkFrozen()).toEqual(['transit']);
      expect(tap(d2, withDevice(cfg, { id: 'bus-it-frozen' }), tokenOf(9), T0).decision).toMatchObject({ result: 'allow', benefit: 'pensioner' });
    } finally {
      await d2.close();
    }
  });

  it('forged, replayed, misdirected, truncated and garbage messages are refused and change nothing', async () => {
    const attacker = await mqtt.connectAsync(stack.brokerUrl, {
      protocolVersion: 4,
      clientId: 'attacker',
      username: 'rc-sync-server',
      password: stack.serverPassword,
    });
    try {
      const key = stack.signingKey();
      const held = dev.store.listVersion('transit');
      const entries = dev.store.entryCount('transit');
      const now = new Date();
      const expectRefused = async (code: string, publish: () => Promise<unknown>) => {
        const n = dev.refused.length;
        await publish();
        await waitFor(() => dev.refused.slice(n).some((r) => r.code === code), { timeoutMs: 5000, what: `refusal ${code}` });
        expect(dev.store.listVersion('transit')).toBe(held);
      };
      const empty = { entries: 0, records: 0, chunks: [], deltas: [], now, ttlMs: 3_600_000 };
      // forged: signed by another key
      await expectRefused(ErrorCode.SyncBadSignature, () =>
        attacker.publishAsync(topics.manifest('transit'), sealManifest({ scope: 'transit', version: held + 5, ...empty }, generateSigningKey().privateKey), {
          qos: 1,
        }),
      );
      // an older version, genuinely signed, replayed
      await expectRefused(ErrorCode.SyncRollback, () =>
        attacker.publishAsync(topics.manifest('transit'), sealManifest({ scope: 'transit', version: 1, ...empty }, key), { qos: 1 }),
      );
      const oldDelta = sealDelta('transit', 0, 1, encodeRecords('transit', []), now, 3_600_000, key).payload;
      await expectRefused(ErrorCode.SyncRollback, () => attacker.publishAsync(topics.delta('transit', 0, 1), oldDelta, { qos: 1 }));
      // another scope's message on this scope's topic
      await expectRefused(ErrorCode.SyncWrongScope, () =>
        attacker.publishAsync(topics.manifest('transit'), sealManifest({ scope: 'school:9', version: held + 1, ...empty }, key), { qos: 1 }),
      );
      // garbage just over the list limit (the broker's packet limit lets it through): the device refuses it before parsing
      await expectRefused(ErrorCode.SyncPayloadTooLarge, () =>
        attacker.publishAsync(topics.manifest('transit'), Buffer.alloc(MAX_LIST_MESSAGE + 1024, 0x5a), { qos: 1 }),
      );
      await expectRefused(ErrorCode.SyncPayloadInvalid, () =>
        attacker.publishAsync(topics.delta('transit', held, held + 1), Buffer.from('garbage'.repeat(100)), { qos: 1 }),
      );
      // truncated chunk: a genuinely signed manifest announcing a new version, then a cut chunk
      const recs = encodeRecords('transit', [
        { token: 'ab'.repeat(16), cardExpiry: '2030-01', benefits: [] },
        { token: 'cd'.repeat(16), cardExpiry: '2030-01', benefits: [] },
      ]);
      const { refs, payloads } = splitChunks(held + 50, recs);
      const m = sealManifest({ scope: 'transit', version: held + 50, entries: 2, records: 2, chunks: refs, deltas: [], now, ttlMs: 3_600_000 }, key);
      await attacker.publishAsync(topics.manifest('transit'), m, { qos: 1 });
      await new Promise((r) => setTimeout(r, 300));
      await expectRefused(ErrorCode.SyncBadChunk, () =>
        attacker.publishAsync(topics.chunk('transit', held + 50, 0), payloads[0]!.subarray(0, payloads[0]!.length - 10), { qos: 1 }),
      );
      const wrong = encodeChunk(
        held + 50,
        0,
        encodeRecords('transit', [
          { token: 'ef'.repeat(16), cardExpiry: '2030-01', benefits: [] },
          { token: 'cd'.repeat(16), cardExpiry: '2030-01', benefits: [] },
        ]),
      );
      expect(sha256Hex(wrong.subarray(44))).not.toBe(refs[0]!.sha256);
      await expectRefused(ErrorCode.SyncBadChunk, () => attacker.publishAsync(topics.chunk('transit', held + 50, 0), wrong, { qos: 1 }));
      // the device kept its list and keeps deciding
      expect(dev.store.entryCount('transit')).toBe(entries);
      expect(tap(dev, cfg, tokenOf(3), T0 + 86_400_000 * 3).decision).toMatchObject({ result: 'allow', benefit: 'pensioner' });
    } finally {
      await attacker.endAsync(true);
    }
  });
}
