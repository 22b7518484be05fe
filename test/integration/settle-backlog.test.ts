import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { topics } from '../../protocol/wire/topics.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { verifyJournalAck } from '../../protocol/wire/verify.js';
import { loadPublicKey } from '../../protocol/wire/envelope.js';
import { Ingest } from '../../sync-server/ingest.js';
import { startServer, type RunningServer } from '../../sync-server/server.js';
import { dbOption, testLogger } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';
import { fullFareEntry } from '../support/journal-rows.js';

/**
 * Issue 10 regression: settlement ran in the MQTT message handler, so an upload's ack (and every other message)
 * waited for the back office to settle up to 50,000 cards. Now settlement runs in slices of a few ms between
 * messages: with a backlog of 50,000 dirty cards being settled, an upload is acknowledged within a bound and
 * while most of the backlog is still waiting.
 */
const BACKLOG = 50_000;
const T0 = Date.parse('2026-11-24T09:00:00+03:00');
const token = (i: number) => i.toString(16).padStart(32, '0');
const routes: Record<string, { fullFareKopecks: number }> = { '1': { fullFareKopecks: 3500 }, '2': { fullFareKopecks: 3500 } };
const RULES = {
  schema: 1,
  tariff: { version: 1, routes, benefits: {}, repeatWindowSec: 420, transfer: { windowSec: 3600, fareKopecks: 0, maxTransfers: 1 }, dailyCapKopecks: 10_000 },
};

function busEntry(seq: number, card: number): WireJournalEntry {
  const time = new Date(T0 + seq * 100).toISOString();
  return fullFareEntry(seq, token(card), time, { data: { effectiveTime: time, route: String(1 + (card % 2)), vehicle: 'V1' } });
}

let server: RunningServer | null = null;
const dir = mkdtempSync(join(tmpdir(), 'rc-settle-backlog-'));
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('settlement never holds a journal-ack', () => {
  it('with 50,000 dirty cards being settled, an upload is acknowledged within a bound, long before the backlog is settled', async () => {
    server = await startServer({
      dataDir: join(dir, 'srv'),
      ...dbOption(join(dir, 'srv')),
      mqttPort: 0,
      httpPort: 0,
      tokenKey: DEV_TOKEN_KEY,
      log: testLogger(),
      chargingIntervalMs: 3_600_000, // only the upload's kick starts settlement
      ingestLimits: { burst: Number.MAX_SAFE_INTEGER, perSecond: Number.MAX_SAFE_INTEGER },
    });
    const db = server.db;
    db.prepare("INSERT INTO configs(name, version, doc, updated_at) VALUES ('rules', 1, ?, ?)").run(JSON.stringify(RULES), new Date(T0).toISOString());
    // the backlog: a busy bus's 50,000 taps of 50,000 cards, stored but not settled yet
    const ingest = new Ingest(db, {}, { burst: Number.MAX_SAFE_INTEGER, perSecond: Number.MAX_SAFE_INTEGER });
    for (let s = 1; s <= BACKLOG; s += 5000) {
      const entries = Array.from({ length: 5000 }, (_, i) => busEntry(s + i, s + i));
      ingest.store('bus-backlog', null, { device: 'bus-backlog', entries });
    }
    const dirtyCards = db.prepare('SELECT count(DISTINCT token) FROM settle_dirty').pluck();
    expect(dirtyCards.get()).toBe(BACKLOG);
    const anyDirty = db.prepare('SELECT 1 FROM settle_dirty LIMIT 1').pluck();
    const anySettled = db.prepare("SELECT 1 FROM journal WHERE device = 'bus-backlog' AND settled_reason IS NOT NULL LIMIT 1").pluck();

    const dev = await mqtt.connectAsync(server.mqttUrl, { protocolVersion: 4, clientId: 'bus-upload' });
    try {
      const key = loadPublicKey(server.publicKeyPem);
      const acks: { upTo: number; at: number }[] = [];
      dev.on('message', (_t, payload) => {
        if (payload.length > 0) acks.push({ upTo: verifyJournalAck(payload, key, 'bus-upload', Infinity).upTo, at: performance.now() });
      });
      await dev.subscribeAsync(topics.journalAck('bus-upload'), { qos: 1 });
      // the first upload kicks settlement of everything dirty; then, while the backlog is being settled, more uploads
      let seq = 0;
      const upload = async () => {
        const entries = Array.from({ length: 20 }, () => busEntry(++seq, BACKLOG + seq));
        const sent = performance.now();
        await dev.publishAsync(topics.journal('bus-upload'), Buffer.from(JSON.stringify({ device: 'bus-upload', entries })), { qos: 1 });
        const upTo = seq;
        await waitFor(() => acks.some((a) => a.upTo >= upTo), { timeoutMs: 10_000, what: `ack of seq ${upTo}` });
        const left = anyDirty.get() !== undefined;
        return { ms: Math.round(acks.find((a) => a.upTo >= upTo)!.at - sent), dirtyLeft: left ? (dirtyCards.get() as number) : 0 };
      };
      await upload();
      await waitFor(() => anySettled.get() !== undefined, { timeoutMs: 10_000, what: 'settlement of the backlog started' });
      const during: { ms: number; dirtyLeft: number }[] = [];
      for (let i = 0; i < 5; i++) during.push(await upload());
      // every upload acknowledged quickly, and while cards were still waiting: the acks did not wait for settlement
      for (const d of during) expect(d.dirtyLeft, JSON.stringify(during)).toBeGreaterThan(BACKLOG / 10);
      expect(Math.max(...during.map((d) => d.ms)), JSON.stringify(during)).toBeLessThan(3000); // at ~180 µs a card (issue 10), settling 50,000 on the message path held the loop ~9 s
      // and the backlog is settled in the end: every card's taps, once
      await waitFor(() => anyDirty.get() === undefined, { timeoutMs: 300_000, what: 'backlog settled' });
      const unsettled = db.prepare("SELECT count(*) FROM journal WHERE settled_reason IS NULL AND settle_code IS NULL AND kind = 'bus'").pluck();
      expect(unsettled.get()).toBe(0);
    } finally {
      await dev.endAsync(true);
    }
  }, 400_000);
});
