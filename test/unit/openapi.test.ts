import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openApiYaml } from '../../sync-server/http/openapi.js';
import { ROUTES } from '../../sync-server/http/routes/index.js';

describe('docs/openapi.yaml', () => {
  it('is what the route table and its schemas generate (run npm run docs:openapi after changing them)', async () => {
    const committed = readFileSync(new URL('../../docs/openapi.yaml', import.meta.url), 'utf8');
    expect(committed).toBe(await openApiYaml(ROUTES));
  });

  it('lists every route of the table, tagged with its listeners', async () => {
    const doc = await openApiYaml(ROUTES);
    for (const r of ROUTES) expect(doc).toContain(`  ${r.url.replace(/:(\w+)/g, '{$1}')}:\n`);
    expect(
      ROUTES.filter((r) => r.listeners.includes('enrol'))
        .map((r) => `${r.method} ${r.url}`)
        .sort(),
    ).toEqual(['GET /v1/health', 'POST /v1/devices/:id/rotate', 'POST /v1/devices/:id/whoami', 'POST /v1/enrol']);
  });
});
