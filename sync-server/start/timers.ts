import type { Logger } from '../../protocol/log.js';
import type { ChargingQueue } from '../charging.js';
import type { ServerOptions } from '../server.js';
import type { Lists } from './lists.js';

/**
 * The periodic jobs: the charging run (every 5 s by default; ingest also kicks it), the lists' manifests resealed
 * before they expire, and the fleet usage (every second by default, only when changed; 0 = off).
 * close() stops them and waits for a charging run in progress.
 */
export function startTimers(
  o: Pick<ServerOptions, 'chargingIntervalMs' | 'usageIntervalMs'>,
  deps: { charging: ChargingQueue; lists: Lists; log: Logger },
): { close(): Promise<void> } {
  const { charging, log } = deps;
  const { publisher, usage, serial } = deps.lists;
  const chargeTimer = setInterval(() => void charging.runOnce().catch(() => undefined), o.chargingIntervalMs ?? 5000);
  chargeTimer.unref();
  const resealTimer = setInterval(() => void serial(() => publisher.reseal()).catch(() => undefined), Math.max(60_000, publisher['opts'].manifestTtlMs / 4));
  resealTimer.unref();
  const usageTimer =
    o.usageIntervalMs === 0
      ? null
      : setInterval(() => {
          try {
            usage.tick();
          } catch (e) {
            log.warn({ err: String(e) }, 'fleet usage not computed');
          }
        }, o.usageIntervalMs ?? 1000);
  usageTimer?.unref();
  return {
    close: async () => {
      clearInterval(chargeTimer);
      await charging.stop();
      clearInterval(resealTimer);
      if (usageTimer) clearInterval(usageTimer);
      usage.stop();
    },
  };
}
