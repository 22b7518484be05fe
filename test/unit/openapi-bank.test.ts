import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openApiYaml } from '../../sync-server/http/openapi.js';
import { ROUTES } from '../../sync-server/http/routes/index.js';

describe('docs/openapi-bank.yaml (what a bank is given)', () => {
  it('is what the bank listener routes generate, and holds only them (run npm run docs:openapi after changing them)', async () => {
    const committed = readFileSync(new URL('../../docs/openapi-bank.yaml', import.meta.url), 'utf8');
    const doc = await openApiYaml(ROUTES, 'bank');
    expect(committed).toBe(doc);
    const paths = [...doc.matchAll(/^ {2}(\/v1\/\S+):$/gm)].map((m) => m[1]);
    expect(paths).toEqual(['/v1/bank/connections', '/v1/bank/connections/{id}']);
    expect(doc).not.toMatch(/^ {4}(SessionUser|AuditRow|ApiToken|User)(Input)?:$/m);
  });
});
