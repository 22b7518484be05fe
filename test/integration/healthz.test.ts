/**
 * GET /healthz for load balancers: public, 200 `ok` when the server is ready, 503 while it starts or when its
 * registry cannot be read. The app is built from the route table with an operations context whose readiness
 * the test sets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Auth } from '../../sync-server/auth/service.js';
import { buildApp } from '../../sync-server/http/app.js';
import type { Api, HttpContext } from '../../sync-server/http/route.js';
import { ROUTES } from '../../sync-server/http/routes/index.js';
import type { Provisioning } from '../../sync-server/enrol.js';
import type { ConsoleApi } from '../../sync-server/console/api.js';
import { openTestRegistry } from '../support/test-db.js';
import { testLogger } from '../support/sync-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-healthz-'));
const db = openTestRegistry(dir);
afterAll(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /healthz', () => {
  it('answers 200 ok when ready and 503 otherwise, with no credentials; /metrics still needs them', async () => {
    let ready = false;
    const ctx: HttpContext = {
      api: {} as Api,
      provisioning: {} as Provisioning,
      auth: new Auth(db),
      console: {} as ConsoleApi,
      ops: { ready: () => ready, metrics: () => Promise.resolve({ contentType: 'text/plain', text: '' }) },
    };
    const app = await buildApp(ROUTES, ctx, { listener: 'operator', bodyLimit: 1 << 20, log: testLogger() });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const get = async (url: string) => {
        const r = await fetch(base + url);
        return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
      };
      expect(await get('/healthz')).toEqual({ status: 503, body: 'unavailable\n', type: 'text/plain; charset=utf-8' });
      ready = true;
      expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n', type: 'text/plain; charset=utf-8' });
      expect((await get('/metrics')).status).toBe(401);
    } finally {
      await app.close();
    }
  });
});
