import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { createLogger } from '../../protocol/log.js';
import { buildApp } from './app.js';
import type { Route } from './route.js';

/**
 * The OpenAPI document of the whole route table (both listeners; each
 * operation tagged with the listeners that serve it), as YAML. Written to
 * docs/openapi.yaml by scripts/gen-openapi.ts.
 */
export async function openApiYaml(routes: readonly Route[]): Promise<string> {
  const app = await buildApp(routes, null, {
    listener: 'all',
    bodyLimit: 1 << 20,
    log: createLogger({ level: 'silent' }),
    before: async (a) => {
      await a.register(fastifySwagger, {
        openapi: {
          openapi: '3.0.3',
          info: { title: 'Resident Card sync-server HTTP API', version: '1' },
          tags: [
            { name: 'operator', description: 'operator API, on loopback (--http-port, default 7300)' },
            { name: 'enrol', description: 'device-facing enrolment listener (--enrol-listen, e.g. 0.0.0.0:7301)' },
          ],
        },
        transform: jsonSchemaTransform,
        transformObject: jsonSchemaTransformObject,
      });
    },
  });
  try {
    return app.swagger({ yaml: true });
  } finally {
    await app.close();
  }
}
