import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes, type Client } from 'aedes';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { topics } from '../../protocol/wire/topics.js';
import { startServer, type RunningServer } from '../../sync-server/server.js';
import { freePort } from '../support/rig/broker.js';
import { logSink } from '../support/log.js';
import { dbOption } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

/**
 * A broker that leaves the server's SUBSCRIBE unanswered (a cluster node electing JetStream leaders did, for over a
 * minute, docs/cluster.md) must not leave the server deaf to the devices: it gives the wait up, tries again, then
 * connects again; once the broker answers, journal uploads reach it.
 */
describe('the server and a broker that never answers its SUBSCRIBE', () => {
  let hang = true;
  let aedes: Aedes;
  let net: Server;
  let server: RunningServer;
  const dir = mkdtempSync(join(tmpdir(), 'rc-subto-'));
  const logs = logSink();
  const serverConnects: string[] = [];
  const answered: string[] = [];

  beforeAll(async () => {
    aedes = await Aedes.createBroker({
      authorizeSubscribe: (client: Client | null, sub, cb) => {
        // the server's ingest subscription goes unanswered while `hang`: no SUBACK, no error
        if (hang && client?.id.startsWith('rc-sync-server') && sub.topic === topics.allJournals()) return;
        if (client?.id.startsWith('rc-sync-server')) answered.push(sub.topic);
        cb(null, sub);
      },
    });
    aedes.on('client', (c) => c.id.startsWith('rc-sync-server') && serverConnects.push(c.id));
    const port = await freePort();
    net = createServer((s) => aedes.handle(s));
    await new Promise<void>((res) => net.listen(port, '127.0.0.1', res));
    server = await startServer({
      dataDir: dir,
      ...dbOption(dir),
      httpPort: 0,
      brokerUrl: `mqtt://127.0.0.1:${port}`,
      tokenKey: DEV_TOKEN_KEY,
      log: logs.log,
      subscribeTimeoutMs: 500,
      usageIntervalMs: 0,
    });
  });
  afterAll(async () => {
    await server?.close();
    await new Promise<void>((res) => aedes.close(() => res()));
    net.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the wait up, tries again, connects again, and hears the devices once the broker answers', async () => {
    await waitFor(() => logs.records().some((r) => r.msg === 'subscribe failed'), { timeoutMs: 10_000, what: 'the first unanswered SUBSCRIBE given up' });
    await waitFor(() => serverConnects.length >= 2, {
      timeoutMs: 15_000,
      what: () =>
        `the server connecting again (connects: ${serverConnects.length}; said: ${logs
          .records()
          .map((r) => `${String(r.msg)} ${String(r.err ?? '')}`)
          .join(' | ')})`,
    });
    expect(logs.records().some((r) => r.msg === 'the broker leaves our SUBSCRIBE unanswered: connecting again')).toBe(true);
    expect(answered).not.toContain(topics.allJournals());
    hang = false;
    await waitFor(() => answered.includes(topics.allJournals()), { timeoutMs: 15_000, what: 'the journal subscription answered' });
    // a device's status now reaches the server (its subscription is live)
    const dev = await mqtt.connectAsync(`mqtt://127.0.0.1:${(net.address() as { port: number }).port}`, { clientId: 'bus-sub-1', reconnectPeriod: 0 });
    try {
      const status = { device: 'bus-sub-1', online: true, at: new Date().toISOString(), lists: {}, backlog: 3 };
      await dev.publishAsync(topics.status('bus-sub-1'), JSON.stringify(status), { qos: 1 });
      await waitFor(() => server.db.prepare('SELECT backlog FROM devices WHERE id = ?').pluck().get('bus-sub-1') === 3, {
        timeoutMs: 10_000,
        what: 'the status stored by the server',
      });
    } finally {
      await dev.endAsync(true);
    }
  });
});
