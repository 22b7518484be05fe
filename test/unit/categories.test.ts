import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry } from '../../device/store/codec.js';
import { DEVICE_BUILT_IN_TABLE, categoryTable, withWireIds } from '../../protocol/categories.js';
import type { TransitEntry } from '../../protocol/lists.js';
import { RulesFile, Tariff } from '../../protocol/rules-schema.js';
import { decodeRecords, encodeRecords } from '../../protocol/wire/codec.js';
import { expectRcError } from '../support/errors.js';
import { Sim, T, fixtureConfig, mkTap, msk } from './rules-sim.js';

const TOKEN = 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1';
const municipal = { wireId: 8, name: { ru: 'муниципальный служащий', en: 'municipal employee' } };
const baseTariff = { routes: { '7': { fullFareKopecks: 3500 } } };

/** A transit record as the codec wrote it before categories were data: category byte = index in the old closed list. */
function oldRecord(token: string, categoryIndex: number): Buffer {
  const b = Buffer.alloc(24);
  b.write(token, 0, 16, 'hex');
  b[16] = 1; // transit benefit
  b[17] = categoryIndex;
  b.writeUInt16BE(Date.UTC(2024, 0, 1) / 86_400_000, 18);
  b.writeUInt16BE(Date.UTC(2030, 11, 31) / 86_400_000, 20);
  b.writeUInt16BE((2029 - 2000) * 12 + 11, 22); // 2029-12
  return b;
}

describe('benefit categories are data', () => {
  it('an old list (records written with the closed enum) still decodes to the same categories, with or without operator categories', () => {
    const buf = Buffer.concat([oldRecord(TOKEN, 0), oldRecord(TOKEN, 3), oldRecord(TOKEN, 7)]);
    const want = [
      {
        token: TOKEN,
        cardExpiry: '2029-12',
        benefits: ['pensioner', 'veteran', 'low-income'].map((category) => ({ category, validFrom: '2024-01-01', validTo: '2030-12-31' })),
      },
    ];
    expect(decodeRecords('transit', buf, false).entries).toEqual(want);
    expect(decodeRecords('transit', buf, false, categoryTable([{ 'municipal-employee': municipal }])).entries).toEqual(want);
    // and encodes back to the very same bytes
    expect(encodeRecords('transit', want).equals(buf)).toBe(true);
  });

  it('an old device store row (category as its index) still decodes; a defined category is stored by its wire id and read back through the rules', () => {
    expect(decodeEntry('transit', TOKEN, '202912|0:20240101:20301231,3:20250101:20271231')).toEqual({
      token: TOKEN,
      cardExpiry: '2029-12',
      benefits: [
        { category: 'pensioner', validFrom: '2024-01-01', validTo: '2030-12-31' },
        { category: 'veteran', validFrom: '2025-01-01', validTo: '2027-12-31' },
      ],
    });
    const cats = categoryTable([{ 'municipal-employee': municipal }]);
    const e: TransitEntry = {
      token: TOKEN,
      cardExpiry: '2029-12',
      benefits: [
        { category: 'pensioner', validFrom: '2024-01-01', validTo: '2030-12-31' },
        { category: 'municipal-employee', validFrom: '2026-01-01', validTo: '2026-12-31' },
      ],
    };
    const s = encodeEntry('transit', e, cats);
    expect(s).toBe('202912|0:20240101:20301231,8:20260101:20261231');
    expect(decodeEntry('transit', TOKEN, s, cats)).toEqual(e);
    // rules without the category: the entry reads with a stand-in that no tariff prices
    expect((decodeEntry('transit', TOKEN, s) as TransitEntry).benefits[1]!.category).toBe('wire-8');
  });

  it('a new category travels by the wire id the rules give it; a device whose rules do not define it keeps the wire id under a stand-in', () => {
    const cats = categoryTable([{ 'municipal-employee': municipal }]);
    const e: TransitEntry = {
      token: TOKEN,
      cardExpiry: '2029-12',
      benefits: [{ category: 'municipal-employee', validFrom: '2026-01-01', validTo: '2026-12-31' }],
    };
    const buf = encodeRecords('transit', [e], [], cats);
    expect(buf[17]).toBe(8);
    expect(decodeRecords('transit', buf, false, cats).entries).toEqual([e]);
    const other = decodeRecords('transit', buf, false, DEVICE_BUILT_IN_TABLE).entries[0] as TransitEntry;
    expect(other.benefits[0]!.category).toBe('wire-8');
    expect(encodeRecords('transit', [other], [], DEVICE_BUILT_IN_TABLE).equals(buf)).toBe(true);
    // the server's tables are strict: a wire id no rules define is refused
    expectRcError(() => decodeRecords('transit', buf, false), 'sync.payload-invalid');
    // a name the table does not know cannot be encoded
    expectRcError(() => encodeRecords('transit', [e]), 'sync.payload-invalid');
  });

  it('the tariff refuses a benefit for a category it does not define, a renumbered built-in and a wire id used twice', () => {
    expect(Tariff.safeParse({ ...baseTariff, benefits: { 'municipal-employee': { kind: 'percent', percentOff: 30 } } }).success).toBe(false);
    expect(Tariff.safeParse({ ...baseTariff, categories: { pensioner: { wireId: 5, name: { ru: 'пенсионер', en: 'pensioner' } } } }).success).toBe(false);
    expect(Tariff.safeParse({ ...baseTariff, categories: { 'municipal-employee': { ...municipal, wireId: 3 } } }).success).toBe(false);
    expect(Tariff.safeParse({ ...baseTariff, categories: { 'municipal-employee': municipal, 'village-teacher': { ...municipal, wireId: 8 } } }).success).toBe(
      false,
    );
    const ok = Tariff.parse({
      ...baseTariff,
      categories: { 'municipal-employee': municipal },
      benefits: { 'municipal-employee': { kind: 'percent', percentOff: 30 } },
    });
    expect(ok.benefits['municipal-employee']).toEqual({ kind: 'percent', percentOff: 30 });
  });

  it('the server assigns a new category the next wire id, keeps it, never reuses one, and refuses rules that renumber or drop one in use', () => {
    const rules = (cats: Record<string, unknown>): RulesFile => RulesFile.parse({ schema: 1, tariff: { ...baseTariff, categories: cats } });
    const name = municipal.name;
    const v1 = withWireIds(null, rules({ 'municipal-employee': { name }, pensioner: { name: { ru: 'пенсионер', en: 'pensioner' } } }));
    expect(v1.tariff!.categories['municipal-employee']!.wireId).toBe(8);
    expect(v1.tariff!.categories.pensioner!.wireId).toBe(0);
    const v2 = withWireIds(v1, rules({ 'municipal-employee': { name }, 'village-teacher': { name: { ru: 'сельский учитель', en: 'village teacher' } } }));
    expect(v2.tariff!.categories['municipal-employee']!.wireId).toBe(8);
    expect(v2.tariff!.categories['village-teacher']!.wireId).toBe(9);
    expectRcError(() => withWireIds(v2, rules({ 'village-teacher': { name } })), 'config.invalid'); // drops municipal-employee
    expectRcError(() => withWireIds(v2, rules({ 'municipal-employee': { name, wireId: 10 }, 'village-teacher': { name } })), 'config.invalid');
    expectRcError(() => withWireIds(v2, rules({ 'municipal-employee': { name }, 'village-teacher': { name }, other: { name, wireId: 9 } })), 'config.invalid');
    const v3 = withWireIds(v2, rules({ 'municipal-employee': { name }, 'village-teacher': { name }, 'rural-doctor': { name } }));
    expect(v3.tariff!.categories['rural-doctor']!.wireId).toBe(10);
    // another rules document (another group of devices) gets the same ids for the same categories, and fresh ones after all of them
    const bus = withWireIds(null, rules({ 'rural-doctor': { name }, 'night-worker': { name } }), [v3]);
    expect(bus.tariff!.categories['rural-doctor']!.wireId).toBe(10);
    expect(bus.tariff!.categories['night-worker']!.wireId).toBe(11);
    expectRcError(() => withWireIds(null, rules({ 'rural-doctor': { name, wireId: 12 } }), [v3]), 'config.invalid');
  });

  it('the decision core applies a category defined only in the rules (municipal employee, 30% off) and decides old categories as before', () => {
    const cfg = fixtureConfig('bus');
    const plain = new Sim(cfg);
    const tariff = Tariff.parse({
      ...cfg.tariff,
      categories: { 'municipal-employee': municipal },
      benefits: { ...cfg.tariff!.benefits, 'municipal-employee': { kind: 'percent', percentOff: 30 } },
    });
    const sim = new Sim({ ...cfg, tariff });
    sim.transit.set(TOKEN, {
      token: TOKEN,
      cardExpiry: '2029-12',
      benefits: [{ category: 'municipal-employee', validFrom: '2026-01-01', validTo: '2026-12-31' }],
    });
    const d = sim.run(mkTap(msk('2026-11-24 08:00'), TOKEN));
    expect([d.result, d.reason, d.fareKopecks, d.benefit]).toEqual(['allow', 'benefit', 2450, 'municipal-employee']);
    for (const token of [T.pensioner, T.schoolchild, T.pensionerDisabled, T.student2, T.unknown]) {
      const a = plain.run(mkTap(msk('2026-11-24 09:00'), token));
      const b = sim.run(mkTap(msk('2026-11-24 09:00'), token));
      expect(b).toEqual(a);
    }
  });
});
