import type { KeyObject } from 'node:crypto';
import type { Logger } from '../../protocol/log.js';
import type { Scope } from '../../protocol/lists.js';
import { finishInterruptedImport } from '../import-recovery.js';
import { ALL_TOKENS, markAll, markDirty, type Dirty } from '../materialize.js';
import { Publisher, DEFAULT_PUBLISHER_OPTIONS } from '../publisher.js';
import type { Db } from '../registry.js';
import { UsagePublisher } from '../usage-publisher.js';
import type { ServerOptions } from '../server.js';
import type { Leadership } from './leader.js';

export interface Lists {
  publisher: Publisher;
  usage: UsagePublisher;
  /** Run f after every list change queued before it (imports, the console, the bank, charging, republishing). */
  serial<T>(f: () => Promise<T>): Promise<T>;
  /**
   * Commit the dirty scopes' new versions and publish them, serialised with everything else that changes lists. On a
   * follower: the changes are marked in the registry (nothing committed, resolves []) for the leader to commit.
   */
  commitAndPublish(dirty: Dirty): Promise<Scope[]>;
  /** The leader: commit and publish what followers marked (start/timers.ts polls it; also on gaining the leadership). */
  commitMarked(): Promise<Scope[]>;
  /** Resolves once every list change queued so far has finished (shutdown waits for it before the broker clients end). */
  drain(): Promise<void>;
}

/**
 * The signed lists and the fleet usage, and the one queue every change to them goes through. Nothing here opens a
 * connection: the broker sets the transports. Only the leader commits lists (start/leader.ts): it finishes an import
 * cut short when it starts leading, and commits what followers marked.
 */
export function startLists(db: Db, key: KeyObject, o: Pick<ServerOptions, 'publisher' | 'settlement'>, log: Logger, leader: Leadership): Lists {
  const publisher = new Publisher(db, key, log.child({ component: 'publisher' }), { ...DEFAULT_PUBLISHER_OPTIONS, ...o.publisher });
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
      if (!leader.isLeader()) {
        markLists(db, dirty);
        return [];
      }
      const changed = publisher.commit(dirty);
      await publisher.publish(changed);
      return changed;
    });
  const commitMarked = (): Promise<Scope[]> =>
    serial(async () => {
      if (!leader.isLeader()) return [];
      const { dirty, keys } = markedLists(db);
      if (keys.length === 0) return [];
      const changed = publisher.commit(dirty);
      // after the commit: a crash in between recomputes them again (a commit of unchanged entries makes no version)
      unmarkLists(db, keys);
      await publisher.publish(changed);
      return changed;
    });

  const importLog = log.child({ component: 'import' });
  // an import cut short by a crash (here or on a leader that died): recompute its scopes (published with everything on connection)
  if (leader.isLeader()) finishInterruptedImport(db, publisher, importLog);
  leader.on('gained', () => {
    void serial(async () => {
      finishInterruptedImport(db, publisher, importLog);
      await publisher.republishAll(); // the lists as the registry has them: a failover loses no publication
      await usage.republish();
    })
      .then(commitMarked)
      .catch((e: unknown) => log.error({ err: String(e) }, 'lists not republished on gaining the leadership'));
  });
  return {
    publisher,
    usage,
    serial,
    commitAndPublish,
    commitMarked,
    drain: () =>
      chain.then(
        () => undefined,
        () => undefined,
      ),
  };
}

/**
 * A follower's list changes, for the leader: one `meta` row per (scope, token), `*` for a whole scope. One row each,
 * never a read-modify-write of a shared value, so instances marking and the leader clearing cannot lose a mark.
 */
const MARK = 'lists.recompute:';
const WHOLE = '*';

/** Record the dirty scopes and tokens for the leader to commit (commitMarked). */
export function markLists(db: Db, dirty: Dirty): void {
  const put = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING');
  db.transaction(() => {
    for (const [scope, tokens] of dirty) {
      if (tokens === ALL_TOKENS) put.run(`${MARK}${scope}:${WHOLE}`, '');
      else for (const t of tokens) put.run(`${MARK}${scope}:${t}`, '');
    }
  })();
}

function markedLists(db: Db): { dirty: Dirty; keys: string[] } {
  const keys = db
    .prepare('SELECT key FROM meta WHERE key >= ? AND key < ? ORDER BY key')
    .pluck()
    .all(MARK, `${MARK.slice(0, -1)};`) as string[]; // ';' follows ':': every key with the prefix
  const dirty: Dirty = new Map();
  for (const k of keys) {
    const rest = k.slice(MARK.length);
    const at = rest.lastIndexOf(':'); // a scope may hold ':' (school:ID), a token never does
    if (at <= 0) continue;
    const scope = rest.slice(0, at);
    const token = rest.slice(at + 1);
    if (token === WHOLE) markAll(dirty, scope);
    else markDirty(dirty, scope, token);
  }
  return { dirty, keys };
}

function unmarkLists(db: Db, keys: readonly string[]): void {
  const del = db.prepare('DELETE FROM meta WHERE key = ?');
  db.transaction(() => {
    for (const k of keys) del.run(k);
  })();
}
