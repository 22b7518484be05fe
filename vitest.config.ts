import { defineConfig } from 'vitest/config';

// Four projects:
//  - unit: pure logic and in-process transports, fully parallel.
//  - integration: the real stack (pcscd + vpcd, MQTT brokers, SQLite files,
//    socat ptys, child processes). Each file owns its rig (private pcscd,
//    free ports), runs in its own process, and stops what it started.
//  - cluster: the 3-node NATS JetStream cluster, last and one file at a time. Its Raft elections after a node is
//    killed need CPU: on two cores shared with the integration pool they once did not settle within a minute.
const CLUSTER = ['test/integration/cluster-*.test.ts'];
//  - postgres: the integration, browser and e2e suites whose servers keep their registry in the database, again with the
//    registry on PostgreSQL (RC_TEST_DB=postgres: one private PostgreSQL 15 for the run, a fresh database per server;
//    docs/postgres.md "The suites on PostgreSQL" says which are not and why). After the others, two files at a time.
const POSTGRES = [
  'test/integration/sync.test.ts',
  'test/integration/sync-faults.test.ts',
  'test/integration/sync-requests.test.ts',
  'test/integration/import-crash.test.ts',
  'test/integration/settle-backlog.test.ts',
  'test/integration/reports-http.test.ts',
  'test/integration/console-api.test.ts',
  'test/integration/auth.test.ts',
  'test/integration/cabinet.test.ts',
  'test/integration/bank-api.test.ts',
  'test/integration/portal-api.test.ts',
  'test/integration/notify.test.ts',
  'test/integration/server-http.test.ts',
  'test/integration/sync-harden.test.ts',
  'test/integration/healthz.test.ts',
  'test/integration/bank-retention.test.ts',
  'test/integration/server-guard.test.ts',
  'test/integration/server-follower.test.ts',
  'test/integration/acl.test.ts',
  'test/integration/auth-cli.test.ts',
  'test/integration/bank-cli.test.ts',
  'test/integration/token-key-retire.test.ts',
  'test/integration/provision.test.ts',
  'test/integration/provision-cli.test.ts',
  'test/integration/provision-mosquitto.test.ts',
  'test/integration/provision-nats-file.test.ts',
  'test/integration/provision-rules-names.test.ts',
  'test/integration/console-browser.test.ts',
  'test/integration/cabinet-browser.test.ts',
  'test/integration/portal-browser.test.ts',
  'test/integration/auth-browser.test.ts',
  'test/integration/reports-browser.test.ts',
  'test/e2e/sync-e2e.test.ts',
  'test/e2e/canteen.e2e.test.ts',
  'test/e2e/partner.e2e.test.ts',
  'test/e2e/runtime.e2e.test.ts',
  'test/e2e/provision.e2e.test.ts',
  'test/e2e/deploy-tls.e2e.test.ts',
  'test/e2e/cabinet.e2e.test.ts',
  'test/integration/tls.test.ts',
  'test/integration/token-hsm-provision.test.ts',
  'test/integration/cabinet-demo.test.ts',
  'test/integration/server-start-fail.test.ts',
  'test/integration/server-subscribe-timeout.test.ts',
  'test/integration/mosquitto-tls.test.ts',
  'test/e2e/fleet.e2e.test.ts',
  'test/e2e/soak.e2e.test.ts',
];
//  - postgres-unit: the unit suites that open the registry themselves (test-db.ts openTestRegistry, also through
//    school-journal.ts schoolRegistry), again on PostgreSQL;
//    in forks (libpq's addon cannot load in a worker thread), with the postgres project.
const POSTGRES_UNIT = [
  'test/unit/settlement.test.ts',
  'test/unit/reports-core.test.ts',
  'test/unit/usage-publisher.test.ts',
  'test/unit/usage-categories.test.ts',
  'test/unit/key-retire.test.ts',
  'test/unit/console-fleet.test.ts',
  'test/unit/server-guard.test.ts',
  'test/unit/server.test.ts',
  'test/unit/leader-jobs.test.ts',
  'test/unit/signing-key.test.ts',
  'test/unit/admin-token.test.ts',
  'test/unit/notify.test.ts',
  'test/unit/reports-partners.test.ts',
  'test/unit/reports-school.test.ts',
  'test/unit/cabinet-today.test.ts',
];
const onPostgres = { RC_TEST_DB: 'postgres' };
const PG_SETUP = 'test/support/rig/postgres-global.ts';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          exclude: CLUSTER,
          pool: 'forks',
          // RC_TEST_DB=postgres in the environment: these files' servers on PostgreSQL too (one for the run)
          globalSetup: process.env.RC_TEST_DB === 'postgres' ? [PG_SETUP] : [],
          // vitest 4 refuses projects with different maxWorkers in one group: run integration after unit
          sequence: { groupOrder: 1 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'cluster',
          include: CLUSTER,
          pool: 'forks',
          sequence: { groupOrder: 2 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 1,
        },
      },
      {
        test: {
          name: 'postgres',
          include: POSTGRES,
          pool: 'forks',
          env: onPostgres,
          globalSetup: [PG_SETUP],
          sequence: { groupOrder: 3 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'postgres-unit',
          include: POSTGRES_UNIT,
          pool: 'forks',
          env: onPostgres,
          globalSetup: [PG_SETUP],
          sequence: { groupOrder: 3 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
        },
      },
    ],
  },
});
