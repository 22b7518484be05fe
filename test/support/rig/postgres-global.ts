/**
 * Vitest global setup for a run on PostgreSQL (RC_TEST_DB=postgres, the `postgres` project): one private
 * PostgreSQL 15 for the whole run (test/support/rig/postgres.ts), its admin URL provided to the test files as
 * `rcPgAdmin`; each server a test starts gets a fresh database on it (test/support/test-db.ts). Stopped at the end.
 */
import type { TestProject } from 'vitest/node';
import { requirePostgres, startPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** postgres://… of the run's PostgreSQL (its `postgres` database), or '' when it is not installed. */
    rcPgAdmin: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!requirePostgres('the suites on PostgreSQL (RC_TEST_DB=postgres)')) {
    project.provide('rcPgAdmin', '');
    return async () => undefined;
  }
  const pg = await startPostgres();
  project.provide('rcPgAdmin', pg.adminUrl);
  return () => pg.stop();
}
