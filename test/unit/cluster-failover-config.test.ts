import { describe, expect, it } from 'vitest';
import { loadConfig, loadConfigFile } from '../../device/config/index.js';
import { syncOptionsFromConfig } from '../../device/sync/from-config.js';
import { RcError } from '../../protocol/errors.js';
import { testLogger } from '../support/sync-harness.js';
import type { SyncStore } from '../../device/sync/client.js';

const base = loadConfigFile('test/fixtures/decide/bus.config.json');
const sync = { brokerUrl: 'mqtt://10.0.0.1:1883', serverPublicKey: 'x'.repeat(44) };

function refusal(raw: unknown): RcError {
  try {
    loadConfig(raw, 'c.json');
  } catch (e) {
    if (e instanceof RcError) return e;
    throw e;
  }
  throw new Error('expected config.invalid');
}

describe('broker failover list in the device config (issue 16)', () => {
  it('a config with one broker URL stays valid as it is and syncs to that broker only', () => {
    const c = loadConfig({ ...base, sync }, 'c.json');
    const o = syncOptionsFromConfig(c, {} as SyncStore, '/tmp/x', testLogger());
    expect(o.brokerUrl).toBe('mqtt://10.0.0.1:1883');
    expect(o.failoverUrls).toBeUndefined();
  });

  it('the other nodes of a cluster reach the sync client in order', () => {
    const c = loadConfig({ ...base, sync: { ...sync, failoverUrls: ['mqtt://10.0.0.2:1883', 'mqtt://10.0.0.3:1883'] } }, 'c.json');
    const o = syncOptionsFromConfig(c, {} as SyncStore, '/tmp/x', testLogger());
    expect([o.brokerUrl, ...(o.failoverUrls ?? [])]).toEqual(['mqtt://10.0.0.1:1883', 'mqtt://10.0.0.2:1883', 'mqtt://10.0.0.3:1883']);
  });

  it('a failover URL that is not a broker URL is refused at its path', () => {
    const e = refusal({ ...base, sync: { ...sync, failoverUrls: ['http://10.0.0.2'] } });
    expect(e.code).toBe('config.invalid');
    expect(e.context?.path).toBe('sync.failoverUrls.0');
  });

  it('a failover URL with another scheme than brokerUrl is refused (a pinned CA would not apply to it)', () => {
    const e = refusal({ ...base, sync: { ...sync, brokerUrl: 'mqtts://10.0.0.1:8883', failoverUrls: ['mqtt://10.0.0.2:1883'] } });
    expect(e.code).toBe('config.invalid');
    expect(e.context?.path).toBe('sync.failoverUrls');
  });
});
