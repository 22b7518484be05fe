import { describe } from 'vitest';
import type { Mode } from '../support/sync-harness.js';
import { syncSuite } from '../support/sync-suite.js';

/** The same suite against the server's embedded aedes broker and a real Mosquitto (and, in cluster-sync.test.ts, a NATS cluster). */
describe.each<Mode>(['embedded', 'mosquitto'])('sync over %s broker', (mode) => syncSuite(mode));
