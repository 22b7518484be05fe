import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMqttTransport } from '../../device/sync/mqtt-transport.js';
import type { SyncTransport } from '../../device/sync/transport.js';
import { aedesRig, type RunningBroker } from '../support/rig/broker.js';
import { waitFor } from '../support/wait.js';

/**
 * The device's broker list (issue 16) without a cluster: two independent brokers stand in for two nodes, so the
 * rotation is tested on every machine (cluster-sync.test.ts tests it on a real NATS cluster when nats-server is there).
 */
describe('device failover between broker nodes', () => {
  let a: RunningBroker;
  let b: RunningBroker;
  let t: SyncTransport | null = null;
  const events: string[] = [];

  beforeAll(async () => {
    a = await aedesRig.start();
    b = await aedesRig.start();
  });
  afterAll(async () => {
    await t?.close();
    await a?.close();
    await b?.close();
  });

  it('a device whose broker is gone connects through the next URL of its list, and back round the list when that one goes', async () => {
    t = createMqttTransport(
      { brokerUrl: a.url, failoverUrls: [b.url], clientId: 'bus-fo-1', will: { topic: 'rc/v1/device/bus-fo-1/status', payload: Buffer.from('{}') } },
      {
        connect: () => events.push(`connect ${t?.url}`),
        message: () => undefined,
        // the sync client's part: after a loss, ask for the next connection (it owns the backoff)
        close: () => {
          events.push('close');
          setTimeout(() => t && !t.connected && t.reconnect(), 100);
        },
        error: () => undefined,
      },
    );
    await waitFor(() => t!.connected, { timeoutMs: 5000, what: 'connected to the first broker' });
    expect(t.url).toBe(a.url);
    await a.stop();
    await waitFor(() => t!.connected && t!.url === b.url, { timeoutMs: 10_000, what: 'connected through the second broker' });
    await a.restart();
    await b.stop();
    await waitFor(() => t!.connected && t!.url === a.url, { timeoutMs: 10_000, what: 'back on the first broker' });
    expect(events.filter((e) => e.startsWith('connect'))).toEqual([`connect ${a.url}`, `connect ${b.url}`, `connect ${a.url}`]);
  });

  it('a publish on the new node goes through (QoS 1 acknowledged)', async () => {
    await expect(t!.publish('rc/v1/device/bus-fo-1/status', Buffer.from('{}'), true)).resolves.toBeUndefined();
  });
});
