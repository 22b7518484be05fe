/**
 * Issue 13 items 7, 8 (server side) and 10: the server does not take a device's or a web page's word.
 * Each case reproduces a finding of the issue; it failed on the behaviour before the fix.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatusAnswer } from '../../protocol/api.js';
import { TokenCreated } from '../../protocol/enrol.js';
import { ErrorCode } from '../../protocol/errors.js';
import { generateDeviceKeys, rawPublic, requestProof } from '../../protocol/sealing.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { loadDevice } from '../../provisioning/device-dir.js';
import { initDevice } from '../../provisioning/ops.js';
import { callApi } from '../../sync-server/commands/client.js';
import { openRegistry } from '../../sync-server/registry.js';
import { startServer } from '../../sync-server/server.js';
import { cardsCsv } from '../support/registry-csv.js';
import { startProvStack, type ProvStack } from '../support/provision-rig.js';
import { busConfig, dbOption, importText, openDevice, serverJournalCount, startStack, tap, testLogger } from '../support/sync-harness.js';
import { onPostgres } from '../support/test-db.js';
import { waitFor } from '../support/wait.js';
import { adminToken } from '../support/operator-api.js';
import { tokenOf } from '../support/registry-csv.js';

interface Answer {
  status: number;
  json: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** A raw HTTP request with exactly the given headers (a browser's, a rebinding attacker's). */
function raw(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(base + path, { method, headers }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(t) as Answer['json'] }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the operator API refuses foreign hosts, origins and content types', () => {
  let stack: ProvStack;
  let base: string;
  let host: string;
  beforeAll(async () => {
    stack = await startProvStack('embedded');
    base = stack.server.httpUrl;
    host = new URL(base).host;
    json.authorization = `Bearer ${adminToken(stack)}`;
  });
  afterAll(async () => {
    await stack?.close();
  });
  const tokens = () => stack.server.db.prepare('SELECT count(*) FROM enrol_tokens').pluck().get() as number;
  const tokenBody = JSON.stringify({ kind: 'bus', route: '7', ttlSec: 3600 });
  const json: Record<string, string> = { 'content-type': 'application/json' };

  it('a foreign Host (DNS rebinding) is server.forbidden-origin (403) and mints nothing', async () => {
    const before = tokens();
    const r = await raw(base, 'POST', '/v1/enrol-tokens', { ...json, host: `evil.example:${new URL(base).port}` }, tokenBody);
    expect(r).toMatchObject({ status: 403, json: { error: { code: ErrorCode.ServerForbiddenOrigin } } });
    expect(await raw(base, 'GET', '/v1/status', { host: 'evil.example' })).toMatchObject({ status: 403 });
    expect(tokens()).toBe(before);
  });

  it('a foreign Origin or a cross-site fetch is server.forbidden-origin and changes nothing', async () => {
    const before = tokens();
    const free = JSON.stringify({ rules: { schema: 1, tariff: { routes: { '7': { fullFareKopecks: 0 } } } } });
    const foreign: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ];
    for (const h of foreign) {
      expect(await raw(base, 'POST', '/v1/enrol-tokens', { ...json, ...h }, tokenBody)).toMatchObject({
        status: 403,
        json: { error: { code: ErrorCode.ServerForbiddenOrigin } },
      });
      expect(await raw(base, 'POST', '/v1/config', { ...json, ...h }, free)).toMatchObject({ status: 403 });
    }
    expect(tokens()).toBe(before);
    // the console's own page (same origin) is served
    expect(await raw(base, 'POST', '/v1/enrol-tokens', { ...json, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }, tokenBody)).toMatchObject({
      status: 200,
    });
    expect(tokens()).toBe(before + 1);
  });

  it('a text/plain or form body on a JSON route, or a non-CSV import, is server.unsupported-media-type (415)', async () => {
    const before = tokens();
    const configs = () => stack.server.db.prepare("SELECT version FROM configs WHERE name = 'rules'").pluck().get();
    const v = configs();
    for (const type of ['text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      expect(await raw(base, 'POST', '/v1/enrol-tokens', { 'content-type': type }, tokenBody)).toMatchObject({
        status: 415,
        json: { error: { code: ErrorCode.ServerUnsupportedMedia } },
      });
    }
    expect(await raw(base, 'POST', '/v1/config', { 'content-type': 'text/plain' }, JSON.stringify({ rules: {} }))).toMatchObject({ status: 415 });
    expect(await raw(base, 'POST', '/v1/import/cards', { 'content-type': 'text/plain' }, cardsCsv(0, 3))).toMatchObject({
      status: 415,
      json: { error: { code: ErrorCode.ServerUnsupportedMedia } },
    });
    expect(stack.server.db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(0);
    expect(tokens()).toBe(before);
    expect(configs()).toBe(v);
    expect(await raw(base, 'POST', '/v1/import/cards', { 'content-type': 'text/csv', authorization: json.authorization! }, cardsCsv(0, 3))).toMatchObject({
      status: 200,
    });
  });

  it('the CLI client keeps working (its Host, no Origin, application/json and text/csv)', async () => {
    const token = adminToken(stack);
    expect((await callApi(base, 'GET', '/v1/status', StatusAnswer, undefined, token)).devices).toBeDefined();
    expect((await callApi(base, 'POST', '/v1/enrol-tokens', TokenCreated, { kind: 'bus', route: '7', ttlSec: 60 }, token)).token).toMatch(/^rce_/);
    expect(await callApi(base, 'GET', '/v1/status', StatusAnswer, undefined, token)).toHaveProperty('current');
    expect(await raw(base, 'GET', '/v1/health', { host: `localhost:${new URL(base).port}` })).toMatchObject({ status: 200 });
  });
});

// SQLite's file itself
describe.skipIf(onPostgres)('the registry file is 0600 whatever its folder', () => {
  it('registry.sqlite and its -wal/-shm are 0600 in an existing 0755 folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-reg-mode-'));
    const old = process.umask(0o022);
    try {
      mkdirSync(join(dir, 'data'), { mode: 0o755 });
      const db = openRegistry(join(dir, 'data'));
      db.prepare("INSERT INTO meta(key, value) VALUES ('x', 'y')").run();
      for (const f of ['registry.sqlite', 'registry.sqlite-wal', 'registry.sqlite-shm']) expect(statSync(join(dir, 'data', f)).mode & 0o777).toBe(0o600);
      db.close();
    } finally {
      process.umask(old);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('enrolment: replays and answers that cannot be sealed', () => {
  let stack: ProvStack;
  const dirs: string[] = [];
  beforeAll(async () => {
    stack = await startProvStack('embedded');
  });
  afterAll(async () => {
    await stack?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const post = (base: string, path: string, body: unknown) => raw(base, 'POST', path, { 'content-type': 'application/json' }, JSON.stringify(body));

  it('an all-zero box key is provision.bad-box-key (400): the token is not spent and no device is created', async () => {
    const t = stack.token('bus', { route: '7' });
    const devices = () => stack.server.db.prepare('SELECT count(*) FROM device_identities').pluck().get() as number;
    const before = devices();
    const k = generateDeviceKeys();
    const body = { token: t.token, kind: 'bus', route: '7', identityKey: rawPublic(k.identity), boxKey: Buffer.alloc(32).toString('base64') };
    expect(await post(stack.server.httpUrl, '/v1/enrol', body)).toMatchObject({ status: 400, json: { error: { code: ErrorCode.ProvisionBadBoxKey } } });
    expect(devices()).toBe(before);
    expect(stack.server.db.prepare('SELECT used_at FROM enrol_tokens WHERE id = ?').pluck().get(t.id)).toBeNull();
    // the same token enrols once the device has a sound key
    expect(await post(stack.server.httpUrl, '/v1/enrol', { ...body, boxKey: rawPublic(k.box) })).toMatchObject({ status: 200 });
    expect(devices()).toBe(before + 1);
  });

  it('a rotate captured before a restart and replayed after it is provision.bad-proof; the device keeps its credentials', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'rc-guard-dev-')), 'rc-device');
    dirs.push(join(dir, '..'));
    const r = await initDevice({ server: stack.server.httpUrl, token: stack.token('bus', { route: '7' }).token, kind: 'bus', route: '7', vehicle: 'A1', dir });
    const proof = requestProof('rotate', r.deviceId, loadDevice(dir).keys.identity);
    const first = await post(stack.server.httpUrl, `/v1/devices/${r.deviceId}/rotate`, proof);
    expect(first.status).toBe(200);
    await stack.server.close();
    const again = await startServer({
      dataDir: stack.dataDir,
      mqttPort: 0,
      httpPort: 0,
      tokenKey: DEV_TOKEN_KEY,
      log: testLogger(),
      brokerPassword: stack.serverPassword,
      deviceAuth: {},
      ...dbOption(stack.dataDir),
    });
    try {
      const before = again.db.prepare('SELECT pw_hash FROM device_identities WHERE id = ?').pluck().get(r.deviceId);
      expect(await post(again.httpUrl, `/v1/devices/${r.deviceId}/rotate`, proof)).toMatchObject({
        status: 400,
        json: { error: { code: ErrorCode.ProvisionBadProof } },
      });
      expect(again.db.prepare('SELECT pw_hash FROM device_identities WHERE id = ?').pluck().get(r.deviceId)).toBe(before);
      // a fresh proof still works: the device is not locked out
      expect((await post(again.httpUrl, `/v1/devices/${r.deviceId}/rotate`, requestProof('rotate', r.deviceId, loadDevice(dir).keys.identity))).status).toBe(
        200,
      );
    } finally {
      await again.close();
    }
  });
});

describe('journal over the per-device rate: refused, resent, nothing lost (real stack)', () => {
  it('a device sending faster than its bucket gets every entry stored once and acknowledged', async () => {
    const stack = await startStack('embedded', { ingestLimits: { burst: 10, perSecond: 20 } });
    const dev = openDevice(stack, 'bus-rate-1', ['transit', 'stoplist'], { ackTimeoutMs: 500 });
    try {
      await importText(stack, 'cards', cardsCsv(0, 50));
      const cfg = busConfig('bus-rate-1');
      const T0 = Date.parse('2026-11-24T09:00:00+03:00');
      const n = 120;
      for (let i = 0; i < n; i++) tap(dev, cfg, tokenOf(i % 50), T0 + i * 600_000);
      dev.client.notify();
      await waitFor(() => dev.store.ackedSeq() === n, { timeoutMs: 30_000, what: 'all entries acknowledged through the rate limit' });
      expect(serverJournalCount(stack, 'bus-rate-1')).toEqual({ n, distinct: n, max: n });
      expect(stack.logs.lines.some((l) => l.includes(ErrorCode.ServerRateLimited))).toBe(true);
    } finally {
      await dev.close();
      await stack.close();
    }
  });
});
