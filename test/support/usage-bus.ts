import { join } from 'node:path';
import { Store } from '../../device/store/index.js';
import { usageContext } from '../../device/store/usage-merge.js';
import type { CategoryTable } from '../../protocol/categories.js';
import type { Tap } from '../../protocol/rules/types.js';
import type { RulesFile } from '../../protocol/rules-schema.js';
import { msk } from './journal-rows.js';
import { tokenOf } from './registry-csv.js';

/**
 * Bus B of the fleet-usage tests, a device store in `dir` that counts usage under `tariff`: one card (10) on its
 * transit list, with `category` as its benefit; `categories` when the device reads a category table of its own.
 */
export function openBusB(dir: string, tariff: NonNullable<RulesFile['tariff']>, category: string, categories?: () => CategoryTable): Store {
  const store = Store.open(join(dir, 'bus-b.db'), { deviceId: 'bus-b', ...(categories ? { categories } : {}) });
  store.setUsageContext(usageContext(tariff));
  store.applySnapshot({
    scope: 'transit',
    version: 1,
    entries: [{ token: tokenOf(10), cardExpiry: '2030-12', benefits: [{ category, validFrom: '2020-01-01', validTo: '2099-12-31' }] }],
  });
  return store;
}

/** Taps of card N at a local Moscow time, each a step further on one boot's monotonic clock. */
export function tapper(): (card: number, at: string) => Tap {
  let mono = 0;
  return (card, at) => ({ wallTime: msk(at), monotonicMs: (mono += 10_000_000), bootId: 'b', direction: null, card: { token: tokenOf(card), expiry: null } });
}
