/**
 * Fleet-wide fares (issue 10) end to end, every part a process as deployed:
 * `dist/rc-sync-server.js start` (its embedded broker, or a real Mosquitto on
 * the password/ACL files the server writes), two buses enrolled with
 * `dist/rc-provision.js init`, each running `dist/rc-device.js run` with its
 * own dir and store, cards tapped through real pcscd + vpcd virtual cards.
 * Bus B's link to the broker goes through a proxy the test cuts: offline, it
 * carries a card that bus A then carries too; back online it uploads late and
 * the server re-settles the day. Bus B then decides on bus A's taps (transfer,
 * monthly quota of a built-in and of an operator-defined category, daily cap).
 * The server, restarted two days later (its clock shifted), charges exactly one
 * aggregated amount per card for the day.
 *
 * Every process runs on one injected clock that starts at noon (Moscow) of
 * today's service day (`noonClock`, test/e2e/fleet-clock-child.ts): all taps fall
 * on that one day whenever the test runs, also across Moscow's midnight (21:00 UTC),
 * when on the real clock they would fall on two service days.
 *
 * Tariff: routes 1..4 at 35 ₽; pensioners 50 % for 2 trips a month; the
 * regional category rural-commuter (defined in the rules, wire id from the
 * server) free for 1 trip a month; a free transfer within 150 s to another
 * route; a 100 ₽ daily cap; repeat window 1 s. Taps here are in real time: the
 * same card on two buses is at least a minute apart (else an impossible trip),
 * and the quota and cap taps on bus B come after the transfer window of the
 * same cards' taps on bus A has closed.
 * Needs `npm run build` (dist/).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { syntheticPan, syntheticPsn } from '../support/pans.js';
import { waitFor } from '../support/wait.js';
import { BusProc, Mosquitto, Readers, ServerProc, closeAll, distBuilt, noonClock, type BrokerKind } from './fleet-rig.js';

const TRANSFER_SEC = 150;
const RULES = {
  schema: 1,
  tariff: {
    version: 1,
    routes: { '1': { fullFareKopecks: 3500 }, '2': { fullFareKopecks: 3500 }, '3': { fullFareKopecks: 3500 }, '4': { fullFareKopecks: 3500 } },
    categories: { 'rural-commuter': { name: { ru: 'Житель села', en: 'Rural commuter' } } },
    benefits: {
      pensioner: { kind: 'percent', percentOff: 50, quota: { trips: 2, per: 'month', onExhausted: 'full-fare' } },
      'rural-commuter': { kind: 'free', quota: { trips: 1, per: 'month', onExhausted: 'full-fare' } },
    },
    repeatWindowSec: 1,
    transfer: { windowSec: TRANSFER_SEC, fareKopecks: 0, maxTransfers: 1 },
    dailyCapKopecks: 10_000,
  },
};
const DAY_MS = 86_400_000;
/** The server flags the same card on two vehicles within 60 s as an impossible trip (sync-server/ingest.ts): taps of one card on two buses are further apart. */
const POSSIBLE_MS = 62_000;
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
const card = (i: number) => ({ pan: syntheticPan(i), psn: syntheticPsn(i) });

const env: NodeJS.ProcessEnv = { ...process.env, RC_LOG_LEVEL: 'warn' };
delete env.RC_TOKEN_KEY;

for (const mode of ['embedded', 'mosquitto'] as BrokerKind[]) {
  describe.skipIf(!distBuilt())(`fleet-wide fares with rc-device run processes (${mode} broker)`, () => {
    const dirs: string[] = [];
    const buses: BusProc[] = [];
    let server: ServerProc | null = null;
    let mosquitto: Mosquitto | null = null;
    let readers: Readers | null = null;
    afterAll(() => closeAll(buses, server, mosquitto, readers, dirs), 120_000);

    it('transfer, monthly quotas and daily cap across buses; an offline bus uploads late and the day re-settles; one charge per card', async () => {
      const base = mkdtempSync(join(tmpdir(), `rc-fleet-e2e-${mode}-`));
      dirs.push(base);
      readers = await Readers.start(2);
      if (mode === 'mosquitto') mosquitto = await Mosquitto.start(join(base, 'mosquitto'));
      const clock = noonClock(); // the server's and the buses' wall clock: noon of today's service day, then real time
      server = await ServerProc.start(join(base, 'server'), mosquitto, env, clock.offsetMs);
      const s = server;
      await s.setRules(RULES); // before the benefits import (the category must be published) and before enrolment (devices get the tariff)
      await s.importCsv('cards', cardsCsv(0, 20));
      await s.importCsv('benefits', benefitsCsv(10, 5)); // persons 10..14: pensioners
      await s.importCsv('benefits', benefitsCsv(15, 2, 'rural-commuter')); // 15, 16: the regional category
      const a = await BusProc.provision(s, readers, 0, join(base, 'bus-a'), { route: '1' }, env);
      buses.push(a);
      const b = await BusProc.provision(s, readers, 1, join(base, 'bus-b'), { route: '2' }, env);
      buses.push(b);
      await Promise.all([a.up(), b.up()]);
      for (const bus of [a, b]) await bus.waitStatus((x) => (x.lists.find((l) => l.scope === 'transit')?.version ?? 0) > 0, 'transit list');

      // bus B loses its link (the proxy resets every connection and refuses new ones) and carries card 4
      b.proxy.cut('reset');
      await b.waitStatus((x) => !x.sync.connected, 'offline');
      expect(await b.tap(card(4).pan, card(4).psn)).toMatchObject({
        result: 'allow',
        reason: 'full-fare',
        fareKopecks: 3500,
        maskedPan: '220099******' + card(4).pan.slice(-4),
      });

      const tB4 = Date.now();
      // bus A: a pensioner uses the month's two quota trips; card 3 pays 70 ₽; card 15 uses its one regional trip
      expect(await a.tap(card(10).pan, card(10).psn)).toMatchObject({ reason: 'benefit', fareKopecks: 1750, benefit: 'pensioner' });
      expect(await a.tap(card(3).pan, card(3).psn)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      expect(await a.tap(card(10).pan, card(10).psn)).toMatchObject({ reason: 'benefit', fareKopecks: 1750 });
      expect(await a.tap(card(3).pan, card(3).psn)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      expect(await a.tap(card(15).pan, card(15).psn)).toMatchObject({ reason: 'benefit', fareKopecks: 0, benefit: 'rural-commuter' });
      const earlyOnA = Date.now();
      // then card 4 (a minute after bus B's tap: the same card on two buses within a minute is an impossible trip, left out of settlement):
      // it pays, bus A does not know bus B's tap; and card 1 pays 35 ₽
      await sleepUntil(tB4 + POSSIBLE_MS);
      expect(await a.tap(card(4).pan, card(4).psn)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      expect(await a.tap(card(1).pan, card(1).psn)).toMatchObject({ reason: 'full-fare', fareKopecks: 3500 });
      const lastOnA = Date.now();
      await a.waitStatus((x) => x.journal.backlog === 0, "bus A's journal uploaded");

      // bus B comes back: it uploads its offline tap; the server re-settles card 4's day (bus A's tap was a transfer)
      b.proxy.restore();
      await b.waitStatus((x) => x.sync.connected && x.journal.backlog === 0, 'online, journal uploaded', 60_000);
      const journalOf = async (id: string) =>
        (await s.api<{ entries: { seq: number; token: string | null; settled: { fareKopecks: number; reason: string } | null }[] }>(`/v1/journal?device=${id}`))
          .entries;
      const aCard4 = await waitFor(
        async () => {
          await s.api('/v1/charging/run', { method: 'POST' }); // settle now (the server's own timer runs once a minute)
          const e = (await journalOf(a.id)).find((x) => x.token === tokenOf(4));
          return e?.settled?.reason === 'transfer' ? e : null;
        },
        { timeoutMs: 30_000, what: "card 4's day re-settled after bus B's late upload", everyMs: 200 },
      ).catch(async (e: unknown) =>
        expect.fail(`${String(e)}\n${JSON.stringify([...(await journalOf(a.id)), ...(await journalOf(b.id))].filter((x) => x.token === tokenOf(4)))}`),
      );
      expect(aCard4.settled).toEqual({ fareKopecks: 0, reason: 'transfer' });

      // bus A's taps reach bus B's fleet usage (a tap on A, reflected in B's store)
      await waitFor(() => (b.usageOf(tokenOf(1))?.fare_today ?? 0) >= 3500 && (b.usageOf(tokenOf(15))?.quota_used ?? 0) >= 1, {
        timeoutMs: 30_000,
        what: "bus A's taps in bus B's fleet usage",
        everyMs: 100,
      });
      expect(b.usageOf(tokenOf(15))?.quota_cat).toBe('rural-commuter'); // decoded with the categories of the rules bus B holds

      // bus B decides as if it had seen bus A (card 1 a minute after bus A's tap, inside the transfer window)
      await sleepUntil(lastOnA + POSSIBLE_MS);
      expect(Date.now() - lastOnA, 'card 1 reaches bus B inside the transfer window').toBeLessThan(TRANSFER_SEC * 1000 - 10_000);
      expect(await b.tap(card(1).pan, card(1).psn)).toMatchObject({ reason: 'transfer', fareKopecks: 0 });
      await sleepUntil(earlyOnA + TRANSFER_SEC * 1000 + 2000); // cards 10, 3 and 15: no transfer from bus A any more
      expect(await b.tap(card(10).pan, card(10).psn)).toMatchObject({ reason: 'quota-exhausted', fareKopecks: 3500 });
      expect(await b.tap(card(3).pan, card(3).psn)).toMatchObject({ reason: 'capped', fareKopecks: 3000 });
      expect(await b.tap(card(15).pan, card(15).psn)).toMatchObject({ reason: 'quota-exhausted', fareKopecks: 3500 });
      await b.waitStatus((x) => x.journal.backlog === 0, "bus B's journal uploaded");
      const today = (await journalOf(b.id)).map((e) => e as unknown as { serviceDay: string })[0]!.serviceDay;
      expect(today, 'the taps fall on the service day of the injected clock').toBe(clock.serviceDay);

      // the day closes: the server, restarted two days later, charges exactly one aggregated amount per card
      await waitFor(
        async () => {
          await s.api('/v1/charging/run', { method: 'POST' });
          return (await journalOf(b.id)).every((e) => e.settled !== null);
        },
        { timeoutMs: 30_000, what: 'settlement caught up', everyMs: 200 },
      );
      for (const bus of buses) await bus.stop();
      await s.stop();
      await s.up(2 * DAY_MS);
      await s.api('/v1/charging/run', { method: 'POST' });
      const charges = (await s.api<{ charges: { token: string; serviceDay: string; amountKopecks: number; taps: number }[] }>('/v1/charging')).charges;
      const byCard = (i: number) => charges.filter((x) => x.token === tokenOf(i));
      for (const i of [1, 3, 4, 10, 15]) expect(byCard(i), `card ${i}`).toHaveLength(1);
      expect(byCard(1)[0]!.amountKopecks).toBe(3500); // 35 ₽ + a free transfer
      expect(byCard(3)[0]!.amountKopecks).toBe(10_000); // capped
      expect(byCard(4)[0]!.amountKopecks).toBe(3500); // bus B's 35 ₽; bus A's tap re-settled as a transfer
      expect(byCard(10)[0]!.amountKopecks).toBe(1750 + 1750 + 3500); // two quota trips at 50 %, then full fare
      expect(byCard(15)[0]!.amountKopecks).toBe(3500); // one free regional trip, then full fare
      expect(charges).toHaveLength(5);
      expect(new Set(charges.map((x) => x.serviceDay))).toEqual(new Set([today]));
      // no card number anywhere the processes wrote to their logs
      for (const log of [s.log, a.log, b.log]) for (const i of [1, 3, 4, 10, 15]) expect(log.join('\n')).not.toContain(card(i).pan);
    }, 600_000);
  });
}
