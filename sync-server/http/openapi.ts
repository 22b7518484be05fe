import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { createLogger } from '../../protocol/log.js';
import { buildApp } from './app.js';
import type { Route } from './route.js';

const BANK_TAG = { name: 'bank', description: 'bank connection API, mutual TLS with a registered client certificate (--bank-listen, e.g. 0.0.0.0:7443)' };
const BANK_INFO = {
  title: 'Resident Card bank connection API',
  version: '1',
  description:
    'For banks that connect cards on behalf of applicants (docs/bank-api.md). Every request is made over mutual TLS with the client ' +
    "certificate the operator issued or registered; the bank is identified by the certificate's SHA-256 fingerprint. " +
    "POST requests carry an Idempotency-Key header. Status changes are POSTed to the bank's callback URL, signed with HMAC-SHA256.",
};

const BANK_SCHEMA = /^(Bank|PublicBank|ErrorAnswer)/;
function bankComponents<T>(doc: T): T {
  const c = (doc as { components?: { schemas?: Record<string, unknown> } }).components;
  if (c?.schemas) c.schemas = Object.fromEntries(Object.entries(c.schemas).filter(([k]) => BANK_SCHEMA.test(k)));
  return doc;
}

/**
 * The OpenAPI document of the whole route table (both listeners; each
 * operation tagged with the listeners that serve it), as YAML. Written to
 * docs/openapi.yaml by scripts/gen-openapi.ts. `only: 'bank'`: the bank listener's routes alone
 * (docs/openapi-bank.yaml, what a bank is given).
 */
export async function openApiYaml(routes: readonly Route[], only?: 'bank'): Promise<string> {
  const bankOnly = only === 'bank';
  const app = await buildApp(bankOnly ? routes.filter((r) => r.listeners.includes('bank')) : routes, null, {
    listener: 'all',
    bodyLimit: 1 << 20,
    log: createLogger({ level: 'silent' }),
    before: async (a) => {
      await a.register(fastifySwagger, {
        openapi: {
          openapi: '3.0.3',
          info: bankOnly ? BANK_INFO : { title: 'Resident Card sync-server HTTP API', version: '1' },
          tags: [
            ...(bankOnly
              ? []
              : [
                  { name: 'operator', description: 'operator API, on loopback (--http-port, default 7300)' },
                  { name: 'enrol', description: 'device-facing enrolment listener (--enrol-listen, e.g. 0.0.0.0:7301)' },
                ]),
            BANK_TAG,
          ],
        },
        transform: jsonSchemaTransform,
        // the bank's document keeps only its own schemas (the registry holds every schema with an id)
        transformObject: (d) => (bankOnly ? bankComponents(jsonSchemaTransformObject(d)) : jsonSchemaTransformObject(d)),
      });
    },
  });
  try {
    return app.swagger({ yaml: true });
  } finally {
    await app.close();
  }
}
