import type { Logger } from '../../protocol/log.js';
import { ChargingQueue, SimulatedCharger } from '../charging.js';
import type { Dirty } from '../materialize.js';
import type { ServerMetrics } from '../metrics.js';
import type { Db } from '../registry.js';
import type { ServerOptions } from '../server.js';
import { Settlement } from '../settlement/index.js';

/**
 * Back-office fare settlement and the aggregated charging of full fares (docs/settlement.md). The queue runs when
 * ingest kicks it and on the charging timer (start/timers.ts); a card whose charge fails goes on the stop-list
 * through the one serialised commit.
 */
export function startMoney(
  db: Db,
  o: Pick<ServerOptions, 'settlement' | 'charger' | 'chargeRetry' | 'settleSchedule'>,
  deps: { metrics: ServerMetrics; commitAndPublish: (d: Dirty) => Promise<unknown>; log: Logger },
): { settlement: Settlement; charging: ChargingQueue } {
  const settlement = new Settlement(db, o.settlement);
  const charging = new ChargingQueue(
    db,
    deps.metrics.countCharges(o.charger ?? new SimulatedCharger(db)),
    async (d) => void (await deps.commitAndPublish(d)),
    deps.log.child({ component: 'charging' }),
    settlement,
    o.chargeRetry,
    o.settleSchedule,
  );
  return { settlement, charging };
}
