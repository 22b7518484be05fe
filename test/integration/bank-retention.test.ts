/**
 * Bank records do not pile up for ever (docs/bank-api.md, "Retention"): on a real registry file, with the bank service's
 * clock injected, the Idempotency-Key records past their 24 h window and the callbacks delivered more than 30 days ago
 * are purged when the service starts; the recent ones and every undelivered callback (pending or failed) stay, and a
 * replay inside the window still gets the stored answer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { addBank, getBank, type BankRow } from '../../sync-server/bank/banks.js';
import { BankService, type Answer } from '../../sync-server/bank/service.js';
import type { Db } from '../../sync-server/registry.js';
import { openTestRegistry } from '../support/test-db.js';
import { expectRcError } from '../support/errors.js';
import { logSink, type LogSink } from '../support/log.js';
import { syntheticPan } from '../support/pans.js';
import { waitFor } from '../support/wait.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-03-02T09:00:00Z');

/** Callback receiver: /ok answers 204, /busy 503 (retried later: pending), /gone 410 (given up: failed). */
async function startReceiver(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(req.url === '/ok' ? 204 : req.url === '/busy' ? 503 : 410).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('bank records retention', () => {
  let dir: string;
  let db: Db;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let sink: LogSink;
  let now = T0;
  let svc: BankService;
  const bank: Record<string, BankRow> = {};

  const request = (b: string, key: string, person: string, pan: string): Answer =>
    svc.connect(bank[b]!, key, { applicant: { personId: person }, pan, expiry: '12/30', replace: true });
  const requestKeys = () => (db.prepare('SELECT key FROM bank_requests ORDER BY key').pluck().all() as string[]).sort();
  const outbox = () => db.prepare('SELECT bank_id AS bank, state FROM bank_outbox ORDER BY bank_id, created_ms').all() as { bank: string; state: string }[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rc-bank-retention-'));
    receiver = await startReceiver();
    db = openTestRegistry(dir);
    for (const [id, path] of [
      ['ok-bank', '/ok'],
      ['busy-bank', '/busy'],
      ['gone-bank', '/gone'],
    ] as const) {
      addBank(db, dir, { id, name: id, callbackUrl: `${receiver.url}${path}` }, new Date(T0));
      bank[id] = getBank(db, id)!;
    }
    sink = logSink();
    svc = new BankService(
      { db, tokenKey: DEV_TOKEN_KEY, snilsKey: Buffer.alloc(32, 7), commitAndPublish: async () => [], version: () => 1, log: sink.log },
      { clock: () => now, outbox: { baseMs: 1000 } },
    );
  });

  afterAll(async () => {
    await svc.close();
    db.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('purges on start the keys past the replay window and the callbacks delivered 30 days ago, keeps the recent and the undelivered', async () => {
    // 31 days ago: one request per bank; ok-bank's callback is delivered, busy-bank's retried, gone-bank's given up
    now = T0;
    expect(request('ok-bank', 'old-key-ok', 'P-1', syntheticPan(1)).status).toBe(200);
    expect(request('busy-bank', 'old-key-busy', 'P-2', syntheticPan(2)).status).toBe(200);
    expect(request('gone-bank', 'old-key-gone', 'P-3', syntheticPan(3)).status).toBe(200);
    await svc.outbox.tick();
    expect(outbox()).toEqual([
      { bank: 'busy-bank', state: 'pending' },
      { bank: 'gone-bank', state: 'failed' },
      { bank: 'ok-bank', state: 'sent' },
    ]);
    // 25 hours before the start: a key just out of its window; 2 days before: a callback delivered recently
    now = T0 + 29 * DAY;
    expect(request('ok-bank', 'two-days-key', 'P-4', syntheticPan(4)).status).toBe(200);
    await svc.outbox.tick();
    now = T0 + 31 * DAY - 25 * HOUR;
    expect(request('ok-bank', 'day-old-key', 'P-5', syntheticPan(5)).status).toBe(200);
    // an hour before the start: a key inside its window, its callback delivered
    now = T0 + 31 * DAY - HOUR;
    const recent = request('ok-bank', 'recent-key', 'P-6', syntheticPan(6));
    expect(recent.status).toBe(200);
    await svc.outbox.tick();
    expect(requestKeys()).toEqual(['day-old-key', 'old-key-busy', 'old-key-gone', 'old-key-ok', 'recent-key', 'two-days-key']);

    now = T0 + 31 * DAY;
    svc.start();
    expect(requestKeys()).toEqual(['recent-key']);
    const left = outbox();
    // the busy bank's callback is still pending (maybe retried once more by the outbox that start() started), the given-up one stays
    expect(left.filter((r) => r.bank !== 'ok-bank').map((r) => r.bank)).toEqual(['busy-bank', 'gone-bank']);
    expect(left.find((r) => r.bank === 'gone-bank')?.state).toBe('failed');
    expect(left.find((r) => r.bank === 'busy-bank')?.state).toBe('pending');
    // ok-bank: its 31-day-old delivered callback is gone; the ones delivered 2 days and an hour ago stay
    const okSent = db.prepare("SELECT sent_ms FROM bank_outbox WHERE bank_id = 'ok-bank' AND state = 'sent' ORDER BY sent_ms").pluck().all() as number[];
    expect(okSent).toEqual([T0 + 29 * DAY, T0 + 31 * DAY - HOUR, T0 + 31 * DAY - HOUR]);
    expect(db.prepare("SELECT count(*) FROM bank_outbox WHERE bank_id = 'ok-bank'").pluck().get()).toBe(3);
    const purged = sink.records().find((r) => r.msg === 'old bank idempotency records and delivered callbacks purged');
    expect(purged).toMatchObject({ requests: 5, callbacks: 1 });
    // the connections themselves are the registry's record: none is purged
    expect(db.prepare('SELECT count(*) FROM bank_connections').pluck().get()).toBe(6);
    await svc.close();
  });

  it('a replay inside the window gets the stored answer; past the window the key is a new request', () => {
    now = T0 + 31 * DAY + 22 * HOUR; // 23 h after the recent request
    const before = db.prepare('SELECT count(*) FROM bank_connections').pluck().get();
    const replay = request('ok-bank', 'recent-key', 'P-6', syntheticPan(6));
    const stored = db.prepare("SELECT answer FROM bank_requests WHERE key = 'recent-key'").pluck().get() as string;
    expect(replay).toEqual({ status: 200, body: JSON.parse(stored) });
    expect(db.prepare('SELECT count(*) FROM bank_connections').pluck().get()).toBe(before);
    // the same key with another body inside the window: still refused as a conflict
    expectRcError(() => request('ok-bank', 'recent-key', 'P-6', syntheticPan(7)), ErrorCode.BankIdempotencyConflict);

    // 25 h after it (the hourly purge has not run yet): the key is forgotten, the request is answered anew
    now = T0 + 31 * DAY + 24 * HOUR;
    const anew = request('ok-bank', 'recent-key', 'P-6', syntheticPan(7));
    expect(anew.status).toBe(200);
    if (!('body' in anew) || !('body' in replay)) throw new Error('expected connections as answers');
    expect(anew.body.id).not.toBe(replay.body.id);
    expect(anew.body.result).toBe('replaced');
  });

  it('the purge runs again on its own timer (retention.intervalMs: an hour by default, 50 ms here)', async () => {
    const hourly = new BankService(
      { db, tokenKey: DEV_TOKEN_KEY, snilsKey: Buffer.alloc(32, 7), commitAndPublish: async () => [], version: () => 1, log: sink.log },
      { clock: () => now, retention: { intervalMs: 50 } },
    );
    hourly.start();
    try {
      expect(requestKeys()).toEqual(['recent-key']); // stored anew just now: inside its window
      now += 25 * HOUR;
      await waitFor(() => requestKeys().length === 0, { timeoutMs: 5000, what: 'the purge timer to delete the key past its window' });
      expect(requestKeys()).toEqual([]);
    } finally {
      await hourly.close();
    }
  });
});
