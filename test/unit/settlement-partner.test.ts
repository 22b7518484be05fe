import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { RulesFile } from '../../protocol/rules-schema.js';
import { replayCard } from '../../sync-server/settlement/engine.js';
import { settlementOptions } from '../../sync-server/settlement/index.js';
import { busRowMaker } from '../support/journal-rows.js';

const tariff = RulesFile.parse(JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8'))).tariff!;
const o = settlementOptions();
const A = 'a'.repeat(32);
const row = busRowMaker(o);

describe('fare settlement and partner entries', () => {
  it("a partner's resident check is left out of settlement as settlement.not-a-fare, and the bus taps around it settle as before", () => {
    const bus1 = row(A, 'bus-a', '2026-11-24T08:00:00', '1');
    const bus2 = row(A, 'bus-a', '2026-11-24T18:00:00', '1');
    const partner = { ...row(A, 'museum-1', '2026-11-24T12:00:00', '1'), kind: 'partner', reason: 'resident', fare: 0, route: null, vehicle: null };
    const without = replayCard(A, [bus1, bus2], null, tariff, o).settled;
    const withIt = replayCard(A, [bus1, partner, bus2], null, tariff, o).settled;
    expect(withIt.find((s) => s.device === 'museum-1')).toMatchObject({ result: null, fareKopecks: null, code: ErrorCode.SettlementNotAFare });
    expect(withIt.filter((s) => s.device === 'bus-a')).toEqual(without);
  });
});
