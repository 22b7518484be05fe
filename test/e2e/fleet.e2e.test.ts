import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Config } from '../../device/config/schema.js';
import { processTap } from '../../device/runtime/process-tap.js';
import { Store } from '../../device/store/index.js';
import { usageContext } from '../../device/store/usage-merge.js';
import { SyncClient } from '../../device/sync/index.js';
import { RulesFile } from '../../protocol/rules-schema.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { busConfig, importText, startStack, testLogger, type Mode, type Stack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

/**
 * Fleet-wide fares (issue 10 item 4) on the real stack: one sync-server, real
 * brokers, three bus devices each with its own SQLite store and the real sync
 * client (harness devices, not `rc-device run` processes). Taps on bus A are
 * reflected in bus B's decisions through the published fleet usage; a bus that
 * was offline uploads late and the day re-settles; closing the day gives one
 * aggregated charge per card.
 *
 * Tariff: routes 1..4 at 35 ₽, pensioners 50 % for 2 trips a month, a free
 * transfer within 5 min to another route, a 100 ₽ daily cap. Tap times are
 * minutes before the real clock (the server settles taps against it).
 */
const RULES = RulesFile.parse({
  schema: 1,
  tariff: {
    version: 1,
    routes: { '1': { fullFareKopecks: 3500 }, '2': { fullFareKopecks: 3500 }, '3': { fullFareKopecks: 3500 }, '4': { fullFareKopecks: 3500 } },
    benefits: { pensioner: { kind: 'percent', percentOff: 50, quota: { trips: 2, per: 'month', onExhausted: 'full-fare' } } },
    repeatWindowSec: 60,
    transfer: { windowSec: 300, fareKopecks: 0, maxTransfers: 1 },
    dailyCapKopecks: 10_000,
  },
});
const tariff = RULES.tariff!;
const MIN = 60_000;

interface Bus {
  id: string;
  cfg: Config;
  store: Store;
  client: SyncClient;
  dir: string;
  close(): Promise<void>;
}

function openBus(stack: Stack, id: string, route: string, start = true): Bus {
  const dir = mkdtempSync(join(tmpdir(), 'rc-fleet-dev-'));
  const base = busConfig(id);
  const cfg = { ...base, device: { ...base.device, id, route, vehicle: `v-${id}` }, tariff } as Config;
  const store = Store.open(join(dir, 'device.sqlite'), { deviceId: id, synchronous: 'OFF' });
  store.setUsageContext(usageContext(tariff));
  const client = new SyncClient({
    store,
    deviceId: id,
    brokerUrl: stack.brokerUrl,
    scopes: ['transit', 'stoplist'],
    serverPublicKey: stack.server.publicKeyPem,
    stagingDir: join(dir, 'staging'),
    log: testLogger(),
    reconnectMinMs: 200,
    reconnectMaxMs: 1000,
    ackTimeoutMs: 3000,
    usageStore: store,
  });
  if (start) client.start();
  return {
    id,
    cfg,
    store,
    client,
    dir,
    async close() {
      await client.stop();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let mono = 1_000_000;
const ride = (bus: Bus, card: number, at: number) => {
  mono += 10_000_000;
  return processTap(
    bus.store,
    { wallTime: at, monotonicMs: mono, bootId: 'fleet-test', direction: null, card: { token: tokenOf(card), expiry: null } },
    bus.cfg,
  ).decision;
};

for (const mode of ['embedded', 'mosquitto'] as Mode[]) {
  describe(`fleet-wide fares across buses (${mode} broker)`, () => {
    const open: Bus[] = [];
    let stack: Stack | null = null;
    afterAll(async () => {
      for (const b of open) await b.close().catch(() => undefined);
      await stack?.close();
    });

    it('transfer, monthly quota and daily cap across buses; a late upload re-settles the day; one charge per card and day', async () => {
      stack = await startStack(mode, { usageIntervalMs: 200 });
      const s = stack;
      await importText(s, 'cards', cardsCsv(0, 20));
      await importText(s, 'benefits', benefitsCsv(10, 5)); // persons 10..14 are pensioners
      s.server.publisher.setConfig('rules', RULES);
      await s.server.publisher.publishConfigs('rules');
      const a = openBus(s, 'bus-a', '1');
      const b = openBus(s, 'bus-b', '2');
      const c = openBus(s, 'bus-c', '3', false); // offline: it rides, uploads later
      open.push(a, b, c);
      await waitFor(() => a.store.listVersion('transit') > 0 && b.store.listVersion('transit') > 0, { timeoutMs: 15_000, what: 'transit lists on the buses' });
      // the service day of every tap below is today's (a run in the first 20 minutes after midnight would straddle two days)
      const T = Date.now();
      const today = new Date(T).toLocaleDateString('sv-SE', { timeZone: 'Europe/Moscow' });

      // bus C, offline, carries card 4 on route 3 at T−9 min
      expect(ride(c, 4, T - 9 * MIN)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      // bus A: a pensioner uses the month's 2 quota trips, card 3 pays 70 ₽, card 1 pays 35 ₽ a minute ago, card 4 pays (bus A does not know bus C)
      expect(ride(a, 10, T - 20 * MIN)).toMatchObject({ reason: 'benefit', fareKopecks: 1750 });
      expect(ride(a, 3, T - 20 * MIN)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      expect(ride(a, 10, T - 15 * MIN)).toMatchObject({ reason: 'benefit', fareKopecks: 1750 });
      expect(ride(a, 3, T - 15 * MIN)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      expect(ride(a, 4, T - 7 * MIN)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      expect(ride(a, 1, T - 1 * MIN)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      const t0 = Date.now();
      await waitFor(() => b.store.readView(tokenOf(1)).counters[`fare@${today}`] === 3500, {
        timeoutMs: 15_000,
        what: "bus A's taps in bus B's fleet usage",
      });
      const reflectedMs = Date.now() - t0;
      console.info(`[${mode}] a tap on bus A reflected in bus B's usage after ${reflectedMs} ms`);

      // bus B decides as if it had seen bus A
      expect(ride(b, 1, T)).toMatchObject({ reason: 'transfer', fareKopecks: 0 });
      expect(ride(b, 10, T)).toMatchObject({ reason: 'quota-exhausted', fareKopecks: 3500 });
      expect(ride(b, 3, T)).toMatchObject({ reason: 'capped', fareKopecks: 3000 });

      // bus C comes online: its tap uploads late; the server re-settles card 4's day: bus A's tap was a transfer
      c.client.start();
      const settled = () =>
        s.server.db.prepare("SELECT settled_reason, settled_fare FROM journal WHERE device = 'bus-a' AND token = ?").get(tokenOf(4)) as
          { settled_reason: string | null; settled_fare: number | null } | undefined;
      await waitFor(() => settled()?.settled_reason === 'transfer', { timeoutMs: 15_000, what: "card 4's day re-settled after bus C's late upload" });
      expect(settled()).toEqual({ settled_reason: 'transfer', settled_fare: 0 });
      await waitFor(() => b.store.usageState().watermark === 3, { timeoutMs: 15_000, what: "bus B's own taps counted by the server" });
      // its own taps are in the fleet figures now: not counted twice
      expect(b.store.readView(tokenOf(3)).counters[`fare@${today}`]).toBe(10_000);
      expect(b.store.readView(tokenOf(10)).counters[`quota:pensioner@${today.slice(0, 7)}`]).toBe(2);

      // the day closes: exactly one aggregated charge per card, of the back office's amount
      await waitFor(() => s.server.db.prepare('SELECT count(*) FROM settle_dirty').pluck().get() === 0, { timeoutMs: 15_000, what: 'settlement caught up' });
      await s.server.charging.runOnce(new Date(T + 2 * 86_400_000));
      const charges = s.server.db.prepare('SELECT token, service_day, amount FROM charges ORDER BY token').all() as {
        token: string;
        service_day: string;
        amount: number;
      }[];
      const byCard = (i: number) => charges.filter((x) => x.token === tokenOf(i));
      for (const i of [1, 3, 4, 10]) expect(byCard(i)).toHaveLength(1);
      expect(byCard(1)[0]!.amount).toBe(3500); // 35 ₽ + a free transfer
      expect(byCard(3)[0]!.amount).toBe(10_000); // capped
      expect(byCard(4)[0]!.amount).toBe(3500); // bus C's 35 ₽; bus A's tap re-settled as a transfer
      expect(byCard(10)[0]!.amount).toBe(1750 + 1750 + 3500); // two quota trips at 50 %, then full fare
      expect(new Set(charges.map((x) => x.service_day))).toEqual(new Set([today]));
    });
  });
}
