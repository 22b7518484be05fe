/**
 * docs/openapi.yaml from the sync-server's route table and its zod schemas
 * (protocol/api.ts, protocol/enrol.ts): `npm run docs:openapi`.
 * test/unit/openapi.test.ts fails when the committed document is stale.
 */
import { writeFileSync } from 'node:fs';
import { openApiYaml } from '../sync-server/http/openapi.js';
import { ROUTES } from '../sync-server/http/routes/index.js';

const out = new URL('../docs/openapi.yaml', import.meta.url);
writeFileSync(out, await openApiYaml(ROUTES));
process.stdout.write(`wrote ${out.pathname}\n`);
// what a bank is given: the bank listener's routes only
const bank = new URL('../docs/openapi-bank.yaml', import.meta.url);
writeFileSync(bank, await openApiYaml(ROUTES, 'bank'));
process.stdout.write(`wrote ${bank.pathname}\n`);
