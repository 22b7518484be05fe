import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../protocol/wire/topics.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { natsAvailable } from '../support/rig/cluster.js';
import {
  busConfig,
  importText,
  openDevice,
  serverJournalCount,
  startStack,
  tap,
  testDevicePassword,
  type Device,
  type Stack,
} from '../support/sync-harness.js';
import { journalBatchOf, syncSuite } from '../support/sync-suite.js';
import { waitFor } from '../support/wait.js';
import { logSink, type LogSink } from '../support/log.js';

/**
 * Issue 16 item 3: the sync protocol on a clustered broker, three nats-server nodes with JetStream and
 * MQTT (docs/cluster.md). Outside CI a machine without nats-server skips it, saying so; CI installs it.
 */
const have = natsAvailable();
if (!have && process.env.CI) throw new Error('nats-server is not installed: CI must run the cluster tests (apt-get install nats-server)');
if (!have) console.warn('cluster-sync: skipped, nats-server is not installed (apt-get install nats-server)');

/** The last dozen things a log said (message, error, broker), for a failure's message. */
function lastSaid(logs: LogSink): string {
  return logs
    .records()
    .slice(-12)
    .map((r) => `${String(r.msg)}${r.err ? ` (${String(r.err)})` : ''}${r.broker ? ` [${String(r.broker)}]` : ''}`)
    .join(' | ');
}

describe.skipIf(!have)('sync over a 3-node NATS cluster', () => {
  describe('the sync suite', () => syncSuite('nats-cluster'));

  describe('a node dies under a device that keeps uploading', () => {
    let stack: Stack;
    let dev: Device;
    const devLogs = logSink();
    const cfg = busConfig('bus-kill-1');
    const T0 = Date.parse('2026-11-24T09:00:00+03:00');

    beforeAll(async () => {
      stack = await startStack('nats-cluster', { publisher: { chunkRecords: 64 } }, [
        { id: 'bus-kill-1', scopes: ['transit', 'stoplist'] },
        { id: 'bus-other', scopes: ['transit'] },
      ]);
      await importText(stack, 'cards', cardsCsv(0, 200));
      await importText(stack, 'benefits', benefitsCsv(0, 50, 'pensioner'));
      dev = openDevice(stack, 'bus-kill-1', ['transit', 'stoplist'], { log: devLogs.log });
      await waitFor(() => dev.store.listVersion('transit') === stack.server.publisher.version('transit'), { timeoutMs: 30_000, what: 'transit list applied' });
    });
    afterAll(async () => {
      await dev?.close();
      await stack?.close();
    });

    it('a device subscribes at QoS 0: none of its subscriptions is a JetStream consumer, the server ingest (QoS 1) is', async () => {
      // every consumer of the cluster (R1: each on one node), by the NATS subject it filters
      const filters = async () => {
        const all: string[] = [];
        for (const u of stack.cluster!.monitorUrls) {
          const r = await fetch(`${u}/jsz?accounts=true&streams=true&consumers=true&config=true`, { signal: AbortSignal.timeout(10_000) });
          const jsz = (await r.json()) as {
            account_details?: { stream_detail?: { consumer_detail?: { config?: { filter_subject?: string } }[] }[] }[];
          };
          for (const a of jsz.account_details ?? [])
            for (const st of a.stream_detail ?? []) for (const c of st.consumer_detail ?? []) all.push(c.config?.filter_subject ?? '');
        }
        return all;
      };
      const before = await filters();
      // the server's own journal ingest stays QoS 1: its consumer is there (the query sees consumers)
      expect(before).toContain('$MQTT.msgs.rc.v1.device.*.journal');
      // a second bus connects and subscribes (journal-ack, configs, manifests, deltas of two scopes)
      const other = openDevice(stack, 'bus-other', ['transit']);
      try {
        await waitFor(() => other.store.listVersion('transit') === stack.server.publisher.version('transit'), {
          timeoutMs: 30_000,
          what: 'the second bus has its transit list',
        });
        const after = await filters();
        expect(after.filter((f) => /\.rc\.v1\.(lists|config)\.|journal-ack/.test(f))).toEqual([]);
        expect(after.length).toBe(before.length);
      } finally {
        await other.close();
      }
    });

    it('a device may not publish on another device topic: the cluster drops it, the server never sees it', async () => {
      const other = await mqtt.connectAsync(stack.brokerUrl, {
        protocolVersion: 4,
        clientId: 'bus-other',
        username: 'bus-other',
        password: testDevicePassword('bus-other'),
        reconnectPeriod: 0,
      });
      try {
        // NATS acknowledges the QoS 1 publish and drops it (a "Publish Violation" in its log), like Mosquitto's ACL
        await other.publishAsync(topics.journal('bus-kill-1'), journalBatchOf('bus-kill-1'), { qos: 1 });
        await new Promise((r) => setTimeout(r, 1000));
        expect(stack.logs.records().some((r) => r.topic === topics.journal('bus-kill-1'))).toBe(false);
        expect(serverJournalCount(stack, 'bus-kill-1').n).toBe(0);
        // nor read another device's acknowledgements: the SUBSCRIBE is refused
        await expect(other.subscribeAsync(topics.journalAck('bus-kill-1'), { qos: 1 })).rejects.toThrow();
      } finally {
        await other.endAsync(true);
      }
    });

    it('kill -9 the node a device is connected to: it reconnects through another node and every acknowledged entry is stored exactly once', async () => {
      const first = stack.cluster!.nodeOfUrl(dev.client.brokerUrl);
      const state = () =>
        `device on node ${stack.cluster!.nodeOfUrl(dev.client.brokerUrl)} connected=${dev.client.connected}, acked ${dev.store.ackedSeq()} of ${dev.store.lastSeq()}, ` +
        `server holds ${JSON.stringify(serverJournalCount(stack, 'bus-kill-1'))}; server said: ${lastSaid(stack.logs)}; device said: ${lastSaid(devLogs)}`;
      expect(first).toBeGreaterThanOrEqual(0);
      let taps = 0;
      let acksSeen: number;
      let ackedBefore = 0;
      // uploading continuously: a tap every 20 ms, the client told at once
      const ticker = setInterval(() => {
        tap(dev, cfg, tokenOf(taps % 200), T0 + taps * 600_000);
        taps++;
        dev.client.notify();
      }, 20);
      try {
        await waitFor(() => dev.store.ackedSeq() >= 50, { timeoutMs: 20_000, what: '50 entries acknowledged before the kill' });
        ackedBefore = dev.store.ackedSeq();
        await stack.cluster!.kill(first);
        const killedAt = Date.now();
        await waitFor(() => dev.client.connected && stack.cluster!.nodeOfUrl(dev.client.brokerUrl) !== first, {
          timeoutMs: 60_000,
          what: 'the device connected through another node',
        });
        const tapsAtReconnect = taps;
        const reconnectedAt = Date.now();
        await waitFor(() => dev.store.ackedSeq() > ackedBefore && taps > tapsAtReconnect + 50, {
          timeoutMs: 90_000,
          what: () => `uploads acknowledged again after the failover (${state()})`,
        });
        acksSeen = dev.store.ackedSeq();
        console.log(
          `failover: device reconnected through node ${stack.cluster!.nodeOfUrl(dev.client.brokerUrl)} ${reconnectedAt - killedAt} ms after the kill, ` +
            `uploads acknowledged again ${Date.now() - killedAt} ms after it`,
        );
      } finally {
        clearInterval(ticker);
      }
      dev.client.notify();
      const last = dev.store.lastSeq();
      await waitFor(() => dev.store.ackedSeq() === last, { timeoutMs: 60_000, what: () => `every entry acknowledged after the failover (${state()})` });
      // every entry the device holds as acknowledged is in the registry, once
      expect(serverJournalCount(stack, 'bus-kill-1')).toEqual({ n: last, distinct: last, max: last });
      expect(acksSeen).toBeGreaterThan(ackedBefore);
      expect(dev.store.journalBacklog()).toBe(0);
      // the node comes back and rejoins; a list change still reaches the device
      await stack.cluster!.restart(first);
      const r = await importText(stack, 'benefits', benefitsCsv(100, 5, 'disabled'));
      await waitFor(() => dev.store.listVersion('transit') === r.versions.transit, { timeoutMs: 60_000, what: 'delta applied after the node came back' });
      expect(tap(dev, cfg, tokenOf(101), T0 + 86_400_000 * 30).decision).toMatchObject({ result: 'allow', benefit: 'disabled' });
    }, 300_000); // JetStream elects new leaders after the kill: tens of seconds on two shared cores
  });
});
