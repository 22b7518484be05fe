import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Leadership } from '../../sync-server/start/leader.js';
import { adminToken } from '../support/operator-api.js';
import { syntheticPan } from '../support/pans.js';
import { cardsCsv } from '../support/registry-csv.js';
import { startStack, type Stack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

/** A leadership the test hands over. */
class Switch extends EventEmitter implements Leadership {
  readonly kind = 'postgres' as const;
  leading = false;
  isLeader(): boolean {
    return this.leading;
  }
  confirm(): Promise<boolean> {
    return Promise.resolve(this.leading);
  }
  gain(): void {
    this.leading = true;
    this.emit('gained');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A sync-server that follows (issue 16 item 2, start/leader.ts), on a real registry and broker: it refuses an import
 * with server.not-leader and changes nothing; a stop-list change through its console is stored and marked, not
 * committed; once it leads it commits the mark as a new stop-list version.
 */
describe('a following sync-server', () => {
  let stack: Stack;
  const leader = new Switch();
  beforeAll(async () => {
    stack = await startStack('embedded', { leadership: leader });
  });
  afterAll(async () => {
    await stack?.close();
  });
  const call = async (path: string, body: string, type: string) => {
    const r = await fetch(stack.server.httpUrl + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken(stack)}`, 'content-type': type },
      body,
    });
    return { status: r.status, json: (await r.json()) as { error?: { code: string } } & Record<string, unknown> };
  };
  const marks = () => stack.server.db.prepare("SELECT count(*) FROM meta WHERE key LIKE 'lists.recompute:%'").pluck().get() as number;

  it('refuses an import (503 server.not-leader) and imports nothing', async () => {
    const r = await call('/v1/import/cards', cardsCsv(0, 10), 'text/csv');
    expect(r).toMatchObject({ status: 503, json: { error: { code: 'server.not-leader' } } });
    expect(stack.server.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(0);
    expect(stack.server.publisher.version('transit')).toBe(0);
  });

  it('stores a stop-list change and marks it; once it leads, the change is committed as a new stop-list version', async () => {
    const before = stack.server.publisher.version('stoplist');
    const r = await call('/v1/stoplist', JSON.stringify({ pan: syntheticPan(7), expiry: '12/30', reason: 'lost' }), 'application/json');
    expect(r.status).toBe(200);
    expect(stack.server.db.prepare('SELECT count(*) FROM stoplist').pluck().get()).toBe(1);
    expect(marks()).toBe(1);
    await new Promise((res) => setTimeout(res, 1500)); // a follower's timers commit nothing
    expect(stack.server.publisher.version('stoplist')).toBe(before);
    leader.gain();
    await waitFor(() => stack.server.publisher.version('stoplist') > before && marks() === 0, { timeoutMs: 10_000, what: 'the marked stop-list committed' });
    expect(stack.server.db.prepare("SELECT count(*) FROM entries WHERE scope = 'stoplist'").pluck().get()).toBe(1);
  });
});
