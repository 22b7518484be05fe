/**
 * The soak (issue 13), short: `rc-device run` buses on one `rc-sync-server start` process and
 * Mosquitto, tapping through pcscd + vpcd, while devices, the server and the broker are killed
 * with kill -9 and restarted, and device links are cut (black hole, reset). Afterwards every tap
 * a device committed is on the server exactly once, no list is a mix of two versions, and every
 * SQLite file passes its integrity check. The long run is `npm run bench:soak` (test/bench/soak-run.ts).
 * Needs `npm run build` (dist/).
 */
import { describe, expect, it } from 'vitest';
import { runSoak } from '../bench/soak-run.js';
import { distBuilt } from './fleet-rig.js';

describe.skipIf(!distBuilt())('soak, short run', () => {
  it('kill -9 of devices, server and broker and cut links lose no tap, duplicate none, mix no list', async () => {
    const r = await runSoak({ devices: 3, seconds: 20, chaosEveryMs: 1500 });
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ lost: 0, duplicated: 0, phantom: 0, mixedLists: 0, integrity: 'ok' });
    expect(r.taps).toBeGreaterThan(0);
    expect(r.onServer).toBe(r.taps);
    expect(r.kills.device).toBeGreaterThan(0);
    expect(r.kills.server).toBeGreaterThan(0);
    expect(r.kills.broker).toBeGreaterThan(0);
    expect(r.cuts.blackhole + r.cuts.reset).toBeGreaterThan(1);
  }, 300_000);
});
