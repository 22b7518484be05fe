/**
 * Issue 14 item 1: the canteen terminal through `rc-device run`, as processes:
 * a private pcscd + vpcd with virtual Mir cards, a display speaking RCP/1 on a
 * socat pty (simulator process), a sync-server with its embedded broker. A
 * school day: a grade-2 student's free breakfast (grades 1–4 by the law), the
 * second breakfast refused (the school's rule), an ОВЗ child's two free meals,
 * a paid lunch recorded with its price; the meal chosen by its time window, the
 * windows moved by publishing `rules-canteen` as the operator would. The
 * terminal is provisioned (rc-provision init's code path) against rules
 * published only as `rules-canteen`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withLuhnDigit } from '../../protocol/pan.js';
import { linesOf, startDisplayDeviceRig, until, type DisplayDeviceRig } from './runtime-rig.js';

const PAN = {
  grade2: withLuhnDigit('220070000000105'),
  ovz: withLuhnDigit('220070000000106'),
  stranger: withLuhnDigit('220070000000107'),
};

/** The canteen rules with one meal window open all day (the test moves the windows by publishing rules). */
const rules = (meal: 'breakfast' | 'lunch') => ({
  meals: [{ kind: meal, from: '00:00', to: '24:00' }],
  grades: [{ from: 1, to: 4, meals: ['breakfast', 'lunch'], perDay: 1 }],
  paidPriceKopecks: { breakfast: 8000, lunch: 12000 },
  secondFreeMeal: 'refuse',
});

let rig: DisplayDeviceRig;
const tap = (pan: string) => rig.tap(pan);
/** What the RCP/1 display was last asked to show, once it shows `text`. */
const shown = (text: string) => rig.shown(text);

describe('canteen terminal in service: rc-device run, pcscd, RCP/1 display, sync-server', () => {
  beforeAll(async () => {
    rig = await startDisplayDeviceRig({
      friendlyName: 'RC Canteen PCD',
      device: { kind: 'canteen', school: '7' },
      listScope: 'school:7',
      async seed(srv) {
        const api = srv.server.api;
        const cards = ['person_id,pan,psn,expiry', `P-G2,${PAN.grade2},01,2029-06`, `P-OVZ,${PAN.ovz},01,2029-06`];
        await api.importCsv('cards', linesOf(cards.join('\n')), false);
        const people = [
          'person_id,school_id,role,grade,meal_category,valid_from,valid_to',
          'P-G2,7,student,2,,2020-01-01,2030-12-31',
          'P-OVZ,7,student,6,ovz,2020-01-01,2030-12-31',
        ];
        await api.importCsv('enrolments', linesOf(people.join('\n')), false);
        // the operator publishes the canteen rules as the README says (rules-canteen, not rules); the technician provisions the terminal
        await api.setConfig('rules-canteen', { schema: 1, canteen: rules('breakfast') });
      },
    });
  }, 120_000);

  afterAll(() => rig?.close(), 60_000);

  it('breakfast: free for a grade-2 student, the second one refused, free for the ОВЗ child; the display shows each', async () => {
    expect(await tap(PAN.grade2)).toMatchObject({
      result: 'allow',
      reason: 'benefit',
      benefit: 'grades-1-4',
      fareKopecks: 0,
      maskedPan: `220070******${PAN.grade2.slice(-4)}`,
    });
    await shown('Бесплатное питание');
    expect(await tap(PAN.grade2)).toMatchObject({ result: 'deny', reason: 'meal-already-taken', fareKopecks: 0 });
    await shown('Питание уже получено');
    expect(await tap(PAN.ovz)).toMatchObject({ result: 'allow', reason: 'benefit', benefit: 'ovz' });
    expect(await tap(PAN.stranger)).toMatchObject({ result: 'deny', reason: 'not-enrolled' });
    await shown('Нет в списке');
  });

  it('lunch (windows moved by published rules-canteen): the ОВЗ child eats free again, the grade-2 student pays, price journaled', async () => {
    const { srv, dev, deviceId } = rig;
    const applied = () => dev.logs.filter((l) => l.includes('published rules applied')).length;
    const before = applied();
    const { version } = await srv.server.api.setConfig('rules-canteen', { schema: 1, canteen: rules('lunch') });
    expect(version).toBe(2);
    await until(() => applied() > before, 15_000, 'rules-canteen v2 applied on the device');
    expect(await tap(PAN.ovz)).toMatchObject({ result: 'allow', reason: 'benefit', benefit: 'ovz' });
    expect(await tap(PAN.grade2)).toMatchObject({ result: 'allow', reason: 'paid-meal', fareKopecks: 12000, benefit: null });
    await shown('Платное питание. Оплата 120,00 ₽');
    await until(() => srv.journal(deviceId).length === 6, 15_000, 'the canteen journal on the server');
    const rows = srv.server.db.prepare('SELECT seq, result, reason, fare, benefit, meal FROM journal WHERE device = ? ORDER BY seq').all(deviceId);
    expect(rows).toEqual([
      { seq: 1, result: 'allow', reason: 'benefit', fare: 0, benefit: 'grades-1-4', meal: 'breakfast' },
      { seq: 2, result: 'deny', reason: 'meal-already-taken', fare: 0, benefit: null, meal: 'breakfast' },
      { seq: 3, result: 'allow', reason: 'benefit', fare: 0, benefit: 'ovz', meal: 'breakfast' },
      { seq: 4, result: 'deny', reason: 'not-enrolled', fare: 0, benefit: null, meal: 'breakfast' },
      { seq: 5, result: 'allow', reason: 'benefit', fare: 0, benefit: 'ovz', meal: 'lunch' },
      { seq: 6, result: 'allow', reason: 'paid-meal', fare: 12000, benefit: null, meal: 'lunch' },
    ]);
    // the PAN never reaches the server's journal nor the device's log
    const all = JSON.stringify(srv.server.db.prepare('SELECT * FROM journal').all()) + dev.logs.join('\n');
    for (const pan of Object.values(PAN)) expect(all).not.toContain(pan);
  });
});
