/**
 * A sync-server in a process of its own, for tests that kill it with -9 (test/integration/ingest-pg.test.ts):
 * `startServer` on the registry and external broker given as JSON in argv[2] ({ dataDir, database, brokerUrl });
 * prints `ready` on stdout once it serves.
 */
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { startServer } from '../../sync-server/server.js';

const o = JSON.parse(process.argv[2] ?? '{}') as { dataDir: string; database: string; brokerUrl: string };
await startServer({
  dataDir: o.dataDir,
  database: o.database,
  brokerUrl: o.brokerUrl,
  httpPort: 0,
  tokenKey: DEV_TOKEN_KEY,
  log: createLogger({ level: 'silent' }),
  ingestLimits: { burst: Number.MAX_SAFE_INTEGER, perSecond: Number.MAX_SAFE_INTEGER },
});
process.stdout.write('ready\n');
