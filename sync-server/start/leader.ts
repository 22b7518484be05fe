import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { ErrorCode } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import { redactUrl } from '../db/pg.js';
import type { ServerOptions } from '../server.js';
import { databaseOptions } from './options.js';

/**
 * Which instance runs the leader-only jobs (docs/postgres.md "Several instances"): the publisher's list commits and
 * manifests, settlement and charging, the fleet usage, the manifests' reseal, the notification and bank outboxes and
 * their purges. Every instance ingests; one leads.
 *
 * - isLeader(): true while this instance holds the leadership; a job checks it each time it runs.
 * - 'gained': this instance became the leader (never emitted for the single leadership, which leads from the start).
 * - 'lost': it stopped being the leader. Final: the instance does not lead again; `rc-sync-server start` then exits
 *   for its service manager to restart it (its registry connection has no reconnection either, docs/postgres.md).
 */
export interface Leadership {
  readonly kind: 'single' | 'postgres';
  isLeader(): boolean;
  /**
   * The same, asked by a request: a leader whose last check is stale because its own event loop was busy (a long
   * import step, a loaded machine) asks PostgreSQL again instead of refusing the request it is the one to serve.
   */
  confirm(): Promise<boolean>;
  on(event: 'gained' | 'lost', listener: () => void): this;
  close(): Promise<void>;
}

/** One instance (SQLite, or PostgreSQL with one server): always the leader, as before issue 16. */
export function singleLeadership(): Leadership {
  const self = Object.assign(new EventEmitter(), {
    kind: 'single' as const,
    isLeader: () => true,
    confirm: () => Promise.resolve(true),
    close: () => Promise.resolve(),
  });
  return self;
}

/** The server's leadership: on PostgreSQL the advisory lock (resolves once tried: a sole instance leads), else single. */
export function startLeadership(o: Pick<ServerOptions, 'database' | 'dataDir' | 'leader' | 'leadership'>, log: Logger): Promise<Leadership> {
  if (o.leadership) return Promise.resolve(o.leadership);
  const spec = databaseOptions(o);
  return spec.kind === 'postgres' ? pgLeadership(spec.url, { ...o.leader, log }) : Promise.resolve(singleLeadership());
}

export interface PgLeadershipOptions {
  /** The advisory lock's key: one per installation sharing the database (default LEADER_LOCK). */
  key?: number;
  /** A follower tries the lock this often (default 2000 ms). */
  tryMs?: number;
  /** The leader checks its lock connection this often (default 2000 ms)… */
  checkMs?: number;
  /** …and steps down when a check is not answered within this (default 1500 ms). */
  answerMs?: number;
  log: Logger;
}

/** The leader's advisory-lock key: 'rc-lead' as bytes (migrations hold 'rc-mig', db/migrations.ts). */
export const LEADER_LOCK = 0x72632d6c656164;

/**
 * How fast PostgreSQL drops the lock connection of a leader it cannot reach (a partition, a frozen host), set on the
 * session: keepalive probes after 4 s of silence, 1 s apart, 2 unanswered → closed after ≥ 6 s; data unacknowledged for
 * 6 s → closed. The leader steps down at most checkMs + answerMs = 3.5 s after its last answered check, so before
 * PostgreSQL can free the lock for a follower (≥ 6 s after the last packet it received): never two leaders.
 */
const SERVER_SIDE_TIMEOUTS = 'SET tcp_keepalives_idle = 4; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 2; SET tcp_user_timeout = 6000';

/** The few asynchronous calls of pg-native the lock connection uses (never the synchronous ones: a hung call would block the loop). */
interface AsyncPg {
  connect(params: string, cb: (err?: Error | null) => void): void;
  query(text: string, cb: (err: Error | null | undefined, rows: Record<string, unknown>[]) => void): void;
  end(cb?: () => void): void;
  /** 'error': the connection failed between queries (PostgreSQL closed it, the socket broke). */
  on(event: 'error', listener: (e: Error) => void): unknown;
}

/**
 * The leadership held by a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own, so that
 * the registry's synchronous connection never waits on it. A follower tries every tryMs; when the leader's process
 * dies, its socket closes and PostgreSQL frees the lock at once: a follower leads within one tryMs. The leader checks
 * its connection every checkMs (`SELECT 1`, answered within answerMs) and steps down ('lost') at the first failure;
 * isLeader() turns false by itself once the last answered check is older than checkMs + answerMs (a stalled event
 * loop). Resolves after the first try: a sole instance leads before it serves anything.
 */
export async function pgLeadership(url: string, o: PgLeadershipOptions): Promise<Leadership> {
  const l = new PgLeadership(url, o);
  await l.attempt();
  return l;
}

type State = 'follower' | 'leader' | 'lost' | 'closed';

class PgLeadership extends EventEmitter implements Leadership {
  readonly kind = 'postgres' as const;
  private state: State = 'follower';
  private client: AsyncPg | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastOk = 0;
  private readonly key: number;
  private readonly tryMs: number;
  private readonly checkMs: number;
  private readonly answerMs: number;
  private readonly log: Logger;
  private readonly name: string;

  constructor(
    private readonly url: string,
    o: PgLeadershipOptions,
  ) {
    super();
    this.key = o.key ?? LEADER_LOCK;
    this.tryMs = o.tryMs ?? 2000;
    this.checkMs = o.checkMs ?? 2000;
    this.answerMs = o.answerMs ?? 1500;
    this.log = o.log.child({ component: 'leader' });
    this.name = redactUrl(url);
  }

  isLeader(): boolean {
    return this.state === 'leader' && performance.now() - this.lastOk <= this.checkMs + this.answerMs;
  }

  /** One try of the lock (a follower), then the next one scheduled. */
  async attempt(): Promise<void> {
    if (this.state !== 'follower') return;
    try {
      const c = this.client ?? (this.client = await connect(lockConnInfo(this.url), this.tryMs + this.answerMs, (cl, e) => this.failed(cl, e)));
      const rows = await query(c, `SELECT pg_try_advisory_lock(${this.key}) AS got`, this.answerMs);
      if (this.state !== 'follower') return; // closed meanwhile
      if (rows[0]?.got === true || rows[0]?.got === 't') {
        this.state = 'leader';
        this.lastOk = performance.now();
        this.log.info({ database: this.name }, 'leader: this instance runs the publisher, settlement and charging');
        this.schedule(() => this.check(), this.checkMs);
        this.emit('gained');
        return;
      }
    } catch (e) {
      if (this.state !== 'follower') return;
      this.log.warn({ err: String(e), database: this.name, code: ErrorCode.DbUnavailable }, 'leader lock not tried: connecting again');
      this.drop();
    }
    this.schedule(() => void this.attempt(), this.tryMs);
  }

  async confirm(): Promise<boolean> {
    if (this.isLeader()) return true;
    if (this.state !== 'leader') return false;
    await this.check();
    return this.isLeader();
  }

  /** One check at a time on the lock connection (the timer's and a request's confirm share it). */
  private checking: Promise<void> | null = null;

  private check(): Promise<void> {
    return (this.checking ??= this.checkOnce().finally(() => (this.checking = null)));
  }

  private async checkOnce(): Promise<void> {
    if (this.state !== 'leader' || !this.client) return;
    try {
      await query(this.client, 'SELECT 1', this.answerMs);
      if (this.state !== 'leader') return;
      this.lastOk = performance.now();
      this.schedule(() => void this.check(), this.checkMs);
    } catch (e) {
      this.stepDown(String(e));
    }
  }

  /** The connection broke between queries: the leader steps down now, a follower connects again at its next try. */
  private failed(c: AsyncPg, e: Error): void {
    if (c !== this.client) return;
    if (this.state === 'leader') this.stepDown(String(e));
    else this.drop();
  }

  private stepDown(why: string): void {
    if (this.state !== 'leader') return;
    this.state = 'lost';
    this.clear();
    this.drop(); // if PostgreSQL still hears us, closing frees the lock now
    this.log.error({ err: why, database: this.name, code: ErrorCode.ServerLeadershipLost }, 'leadership lost: leader-only jobs stopped');
    this.emit('lost');
  }

  private schedule(f: () => void, ms: number): void {
    this.clear();
    this.timer = setTimeout(f, ms);
    this.timer.unref();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private drop(): void {
    const c = this.client;
    this.client = null;
    try {
      c?.end();
    } catch {
      // already closed
    }
  }

  close(): Promise<void> {
    this.state = 'closed';
    this.clear();
    this.drop(); // the session ends: PostgreSQL frees the lock
    return Promise.resolve();
  }
}

/** The URL with libpq's connect timeout and client keepalives, and the server-side timeouts set as session options. */
function lockConnInfo(url: string): string {
  const u = new URL(url);
  const set = (k: string, v: string) => u.searchParams.has(k) || u.searchParams.set(k, v);
  set('connect_timeout', '5');
  set('keepalives', '1');
  set('keepalives_idle', '4');
  set('keepalives_interval', '1');
  set('keepalives_count', '2');
  set('application_name', 'rc-sync-server leader');
  return u.toString();
}

/**
 * p, or an error after ms. The timer's verdict waits one turn (setImmediate): after a stalled event loop the timer and
 * the answer are due together, and timers run before I/O; an answer that did come in time then wins.
 */
function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const t = setTimeout(
      () =>
        setImmediate(() => {
          if (!done) reject(new Error(`${what}: no answer within ${ms} ms`));
          done = true;
        }),
      ms,
    );
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        if (!done) resolve(v);
        done = true;
      },
      (e: unknown) => {
        clearTimeout(t);
        if (!done) reject(e instanceof Error ? e : new Error(String(e)));
        done = true;
      },
    );
  });
}

async function connect(conninfo: string, ms: number, onError: (c: AsyncPg, e: Error) => void): Promise<AsyncPg> {
  const Client = createRequire(import.meta.url)('pg-native') as new () => AsyncPg;
  const c = new Client();
  c.on('error', (e) => onError(c, e));
  try {
    await timeout(new Promise<void>((res, rej) => c.connect(conninfo, (err) => (err ? rej(err) : res()))), ms, 'connect');
    await query(c, SERVER_SIDE_TIMEOUTS, ms);
    return c;
  } catch (e) {
    c.end();
    throw e;
  }
}

function query(c: AsyncPg, sql: string, ms: number): Promise<Record<string, unknown>[]> {
  return timeout(new Promise((res, rej) => c.query(sql, (err, rows) => (err ? rej(err) : res(rows)))), ms, 'query');
}
