import type { KeyObject } from 'node:crypto';
import type { Logger } from '../../protocol/log.js';
import type { Scope } from '../../protocol/lists.js';
import { finishInterruptedImport } from '../import-recovery.js';
import type { Dirty } from '../materialize.js';
import { Publisher, DEFAULT_PUBLISHER_OPTIONS } from '../publisher.js';
import type { Db } from '../registry.js';
import { UsagePublisher } from '../usage-publisher.js';
import type { ServerOptions } from '../server.js';

export interface Lists {
  publisher: Publisher;
  usage: UsagePublisher;
  /** Run f after every list change queued before it (imports, the console, the bank, charging, republishing). */
  serial<T>(f: () => Promise<T>): Promise<T>;
  /** Commit the dirty scopes' new versions and publish them, serialised with everything else that changes lists. */
  commitAndPublish(dirty: Dirty): Promise<Scope[]>;
  /** Resolves once every list change queued so far has finished (shutdown waits for it before the broker clients end). */
  drain(): Promise<void>;
}

/** The signed lists and the fleet usage, and the one queue every change to them goes through. Nothing here opens a connection: the broker sets the transports. */
export function startLists(db: Db, key: KeyObject, o: Pick<ServerOptions, 'publisher' | 'settlement'>, log: Logger): Lists {
  const publisher = new Publisher(db, key, log.child({ component: 'publisher' }), { ...DEFAULT_PUBLISHER_OPTIONS, ...o.publisher });
  // an import cut short by a crash: recompute its scopes now (published with everything on connection)
  finishInterruptedImport(db, publisher, log.child({ component: 'import' }));
  const usage = new UsagePublisher(db, key, log.child({ component: 'usage' }), o.settlement ? { settlement: o.settlement } : {});

  // serialise everything that changes lists
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const p = chain.then(f, f);
    chain = p.catch(() => undefined);
    return p;
  };
  const commitAndPublish = (dirty: Dirty): Promise<Scope[]> =>
    serial(async () => {
      const changed = publisher.commit(dirty);
      await publisher.publish(changed);
      return changed;
    });
  return {
    publisher,
    usage,
    serial,
    commitAndPublish,
    drain: () =>
      chain.then(
        () => undefined,
        () => undefined,
      ),
  };
}
