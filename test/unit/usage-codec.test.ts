import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RulesFile } from '../../protocol/rules-schema.js';
import { RECORD_SIZE } from '../../protocol/wire/codec.js';
import { decodeUsage, deviceKey, encodeUsage, NO_ROUTE, openUsage, sealUsage, type UsageCard, type UsageDay } from '../../protocol/wire/usage-codec.js';
import { generateSigningKey } from '../../protocol/wire/envelope.js';
import { ErrorCode } from '../../protocol/errors.js';
import { fleetUsage, settlementOptions, usageCards } from '../../sync-server/settlement/index.js';
import { expectRcError } from '../support/errors.js';
import { busRowMaker, msk } from '../support/journal-rows.js';

/** Fleet usage on the wire: one 24-byte record per active card, a day record, a watermark per device. */
const day: UsageDay = { date: '2026-11-24', startMs: msk('2026-11-24T00:00:00') };
const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const cards: UsageCard[] = [
  { token: A, quotaCategory: null, quotaUsed: 0, fareToday: 7000, lastPaid: { effMs: msk('2026-11-24T09:40:00'), routeIndex: 1, transfers: 0 } },
  { token: B, quotaCategory: 'pensioner', quotaUsed: 2, fareToday: 1750, lastPaid: null },
];

describe('usage records', () => {
  it('round-trips the day, the cards and the watermarks at 24 bytes a card', () => {
    const wm = [{ key: deviceKey('bus-a'), seq: 41 }];
    const buf = encodeUsage(day, cards, wm);
    expect(buf.length).toBe((1 + cards.length + wm.length) * RECORD_SIZE);
    expect(decodeUsage(buf, false)).toEqual({ day, cards, watermarks: wm, removes: [] });
  });

  it('floors the last paid tap to 2 s and saturates counters it cannot carry', () => {
    const odd: UsageCard = {
      token: A,
      quotaCategory: 'pensioner',
      quotaUsed: 300,
      fareToday: 70_000,
      lastPaid: { effMs: day.startMs + 1999, routeIndex: 3, transfers: 20 },
    };
    const [c] = decodeUsage(encodeUsage(day, [odd], [])).cards;
    expect(c).toEqual({ ...odd, quotaUsed: 255, fareToday: 65_535, lastPaid: { effMs: day.startMs, routeIndex: 3, transfers: 15 } });
  });

  it('drops a last paid tap older than 12 h before the day (outside every transfer window)', () => {
    const old: UsageCard = { ...cards[0]!, lastPaid: { effMs: day.startMs - 13 * 3_600_000, routeIndex: 0, transfers: 0 } };
    expect(decodeUsage(encodeUsage(day, [old], [])).cards[0]!.lastPaid).toBeNull();
  });

  it('carries removes in deltas only', () => {
    const buf = encodeUsage(day, [], [], [A]);
    expect(decodeUsage(buf).removes).toEqual([A]);
    expectRcError(() => decodeUsage(buf, false), 'sync.payload-invalid');
  });

  it('refuses a card before the day record, a list record, a partial record, an unknown category id', () => {
    const buf = encodeUsage(day, cards, []);
    expectRcError(() => decodeUsage(buf.subarray(RECORD_SIZE)), 'sync.payload-invalid');
    expectRcError(() => decodeUsage(buf.subarray(0, 30)), 'sync.payload-invalid');
    const list = Buffer.from(buf);
    list[RECORD_SIZE + 16] = 1; // a transit benefit record
    expectRcError(() => decodeUsage(list), 'sync.payload-invalid');
    const cat = Buffer.from(buf);
    cat[2 * RECORD_SIZE + 17] = 0xfe;
    expectRcError(() => decodeUsage(cat), 'sync.payload-invalid');
  });

  it('a device key is 16 bytes, stable, and differs per device', () => {
    expect(deviceKey('bus-a')).toMatch(/^[0-9a-f]{32}$/);
    expect(deviceKey('bus-a')).toBe(deviceKey('bus-a'));
    expect(deviceKey('bus-a')).not.toBe(deviceKey('bus-b'));
  });
});

describe('usage cards from fleet usage (server)', () => {
  const tariff = RulesFile.parse(JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8'))).tariff!;
  const o = settlementOptions();
  const P = 'c'.repeat(32);
  const row = busRowMaker(o);
  const transit = (t: string) =>
    t === P ? { token: P, cardExpiry: '2030-12', benefits: [{ category: 'pensioner' as const, validFrom: '2020-01-01', validTo: '2099-12-31' }] } : null;

  it('carries the quota of the month, the fares of the day and the last paid tap with its route index', () => {
    const rows = [row(P, 'bus-a', '2026-11-03T08:00:00', '1'), row(P, 'bus-b', '2026-11-24T09:00:00', '2'), row(A, 'bus-b', '2026-11-24T09:40:00', '2')];
    const u = usageCards(fleetUsage(rows, transit, tariff, o, msk('2026-11-24T10:00:00')), tariff, '2026-11-24');
    expect(u).toEqual([
      { token: A, quotaCategory: null, quotaUsed: 0, fareToday: 3500, lastPaid: { effMs: msk('2026-11-24T09:40:00'), routeIndex: 1, transfers: 0 } },
      { token: P, quotaCategory: 'pensioner', quotaUsed: 2, fareToday: 1750, lastPaid: null }, // 09:00 is a full hour ago: the transfer window is closed
    ]);
    expect(
      usageCards([{ token: A, counters: {}, marks: { lastPaid: { effMs: 0, monoMs: 0, bootId: 'x', route: 'nope', transfers: 0 } } }], tariff, '2026-11-24')[0]!
        .lastPaid!.routeIndex,
    ).toBe(NO_ROUTE);
  });
});

describe('the signed usage message', () => {
  const server = generateSigningKey();
  const records = encodeUsage(day, cards, [{ key: deviceKey('bus-a'), seq: 7 }]);
  const now = new Date('2026-11-24T10:00:00Z');

  it('opens with the server key; forged, tampered, expired or oversized-body messages are refused with their codes', () => {
    const good = sealUsage(null, 100, records, now, 60_000, server.privateKey);
    expect(openUsage(good, server.publicKey, now).records.equals(records)).toBe(true);
    // signed by another key
    const forged = sealUsage(null, 100, records, now, 60_000, generateSigningKey().privateKey);
    expectRcError(() => openUsage(forged, server.publicKey, now), ErrorCode.SyncBadSignature);
    // one byte of the body changed after signing
    const tampered = Buffer.from(good);
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1;
    expectRcError(() => openUsage(tampered, server.publicKey, now), [ErrorCode.SyncBadSignature, ErrorCode.SyncPayloadInvalid]);
    // past its expiry
    expectRcError(() => openUsage(good, server.publicKey, new Date(now.getTime() + 61_000)), ErrorCode.SyncExpired);
  });
});
