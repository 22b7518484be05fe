/**
 * A start-up that fails half-way (here: the operator's port is taken, after the embedded broker and its clients
 * are up) closes what it had opened, in the reverse order: before, the broker kept its port and the clients kept
 * reconnecting in a process that had already failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { startServer } from '../../sync-server/server.js';
import { expectRcError } from '../support/errors.js';
import { freePort } from '../support/rig/broker.js';
import { dbOption, testLogger } from '../support/sync-harness.js';
import { onPostgres, openTestRegistry } from '../support/test-db.js';

function listen(port: number): Promise<Server> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(port, '127.0.0.1', () => res(s));
  });
}

const close = (s: Server) => new Promise<void>((res) => s.close(() => res()));

describe('a sync server start-up that fails half-way', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rc-start-fail-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('leaves neither the embedded broker listening nor the registry open', async () => {
    const taken = await listen(0);
    const httpPort = (taken.address() as { port: number }).port;
    const mqttPort = await freePort();
    try {
      const e = await expectRcError(
        startServer({ dataDir, mqttPort, httpPort, tokenKey: DEV_TOKEN_KEY, log: testLogger(), consoleDir: null, webDir: null, ...dbOption(dataDir) }),
        ErrorCode.ServerBadRequest,
      );
      expect(e.message).toContain(`127.0.0.1:${httpPort}`);
    } finally {
      await close(taken);
    }
    // the broker's port is free again at once: it was closed, not left to the process's exit
    await close(await listen(mqttPort));
    if (onPostgres) {
      // and on PostgreSQL no connection of the failed start is left on its database (this one aside)
      const db = openTestRegistry(dataDir);
      try {
        expect(db.prepare('SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()').pluck().get()).toBe(0);
      } finally {
        db.close();
      }
    }
    // and the same data dir starts (and stops) cleanly on the ports the failed start wanted
    const server = await startServer({
      dataDir,
      mqttPort,
      httpPort,
      tokenKey: DEV_TOKEN_KEY,
      log: testLogger(),
      consoleDir: null,
      webDir: null,
      ...dbOption(dataDir),
    });
    try {
      expect(server.mqttUrl).toBe(`mqtt://127.0.0.1:${mqttPort}`);
      expect(server.httpUrl).toBe(`http://127.0.0.1:${httpPort}`);
      expect(server.db.open).toBe(true);
    } finally {
      await server.close();
    }
    expect(server.db.open).toBe(false);
  });
});
