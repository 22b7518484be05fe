import type { Logger } from '../../protocol/log.js';
import type { ChargingQueue } from '../charging.js';
import type { ServerOptions } from '../server.js';
import type { Leadership } from './leader.js';
import type { Lists } from './lists.js';

/** How often the leader commits the list changes followers marked (start/lists.ts commitMarked). */
export const MARKED_POLL_MS = 1000;

/**
 * The periodic jobs, all leader-only (start/leader.ts: each checks the leadership when it fires, so a follower runs
 * none and a leader that steps down stops at once): the charging run (every 5 s by default; ingest also kicks it), the
 * lists' manifests resealed before they expire, the fleet usage (every second by default, only when changed; 0 = off),
 * and the list changes followers marked (every MARKED_POLL_MS). close() stops them and waits for a charging run in progress.
 */
export function startTimers(
  o: Pick<ServerOptions, 'chargingIntervalMs' | 'usageIntervalMs'>,
  deps: {
    charging: Pick<ChargingQueue, 'runOnce' | 'stop'>;
    lists: Pick<Lists, 'publisher' | 'usage' | 'serial' | 'commitMarked'>;
    leader: Leadership;
    log: Logger;
  },
): { close(): Promise<void> } {
  const { charging, leader, log } = deps;
  const { publisher, usage, serial, commitMarked } = deps.lists;
  const every = (ms: number, job: () => void): NodeJS.Timeout => {
    const t = setInterval(() => leader.isLeader() && job(), ms);
    t.unref();
    return t;
  };
  const timers = [
    every(o.chargingIntervalMs ?? 5000, () => void charging.runOnce().catch(() => undefined)),
    every(Math.max(60_000, publisher['opts'].manifestTtlMs / 4), () => void serial(() => publisher.reseal()).catch(() => undefined)),
    every(MARKED_POLL_MS, () => void commitMarked().catch((e: unknown) => log.warn({ err: String(e) }, 'marked list changes not committed'))),
  ];
  if (o.usageIntervalMs !== 0)
    timers.push(
      every(o.usageIntervalMs ?? 1000, () => {
        try {
          usage.tick();
        } catch (e) {
          log.warn({ err: String(e) }, 'fleet usage not computed');
        }
      }),
    );
  return {
    close: async () => {
      for (const t of timers) clearInterval(t);
      await charging.stop();
      usage.stop();
    },
  };
}
