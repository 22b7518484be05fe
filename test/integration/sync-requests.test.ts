import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../protocol/wire/topics.js';
import { RequestPolicy } from '../../sync-server/requests.js';
import { cardsCsv } from '../support/registry-csv.js';
import { importText, startStack, type Stack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

describe('request policy (pure)', () => {
  const own = new Map([['bus-1', ['transit', 'stoplist'] as const]]);
  const policy = () =>
    new RequestPolicy(
      (d) => own.get(d) ?? null,
      () => ['transit', 'stoplist', 'school:7'],
      { perDeviceMs: 10_000, perScopeMs: 5_000 },
    );

  it('answers only the scopes an enrolled device holds, and none that does not exist', () => {
    const p = policy();
    expect(p.admit('bus-1', ['transit', 'school:7', 'school:zz'], 0)).toEqual({ scopes: ['transit'], refused: null });
    expect(policy().admit('bus-1', ['school:zz'], 0)).toEqual({ scopes: [], refused: 'no-such-scope' });
    // a device the registry does not know (open policy): any existing scope, still no invented one
    expect(policy().admit('demo-bus', ['school:7', 'school:zz'], 0)).toEqual({ scopes: ['school:7'], refused: null });
  });

  it('rate-limits per device and per scope', () => {
    const p = policy();
    expect(p.admit('bus-1', ['transit'], 0).scopes).toEqual(['transit']);
    expect(p.admit('bus-1', ['transit'], 9_999)).toEqual({ scopes: [], refused: 'rate-limited' });
    // another device asking for the same scope within the scope window: nothing republished
    expect(p.admit('demo-bus', ['transit'], 1_000)).toEqual({ scopes: [], refused: 'recently-answered' });
    expect(p.admit('bus-1', ['transit'], 10_000).scopes).toEqual(['transit']);
  });
});

describe('a device request on the embedded broker', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('embedded');
    await importText(stack, 'cards', cardsCsv(0, 40_000)); // a few snapshot chunks
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('is answered with the manifest only, never a whole list, and creates nothing for an invented scope', async () => {
    const url = stack.brokerUrl;
    const passive = await mqtt.connectAsync(url, { clientId: 'passive-bus', reconnectPeriod: 0 });
    const asker = await mqtt.connectAsync(url, { clientId: 'asker', reconnectPeriod: 0 });
    try {
      await passive.subscribeAsync('rc/v1/#', { qos: 1 });
      let bytes = 0;
      const got: string[] = [];
      passive.on('message', (t, p, packet) => {
        if (packet.retain) return; // the retained copies of the subscription, not the traffic a request causes
        got.push(t);
        bytes += p.length;
      });
      for (let i = 0; i < 20; i++)
        await asker.publishAsync(topics.request('asker'), Buffer.from(JSON.stringify({ device: 'asker', scopes: ['transit', 'school:zz'] })), { qos: 1 });
      await waitFor(() => got.some((t) => t === topics.manifest('transit')), { timeoutMs: 5_000, what: 'the transit manifest after a request' });
      await new Promise((r) => setTimeout(r, 500));
      expect(got.filter((t) => !t.includes('/device/'))).toEqual([topics.manifest('transit')]); // once, manifest only
      expect(bytes).toBeLessThan(64 * 1024);
      const invented = await new Promise<boolean>((res) => {
        const c = mqtt.connect(url, { clientId: 'probe', reconnectPeriod: 0 });
        c.on('connect', () => {
          c.subscribe(topics.manifest('school:zz'));
          c.on('message', () => res(true));
          setTimeout(() => res(false), 500);
        });
      });
      expect(invented).toBe(false);
    } finally {
      await passive.endAsync(true);
      await asker.endAsync(true);
    }
  });
});
