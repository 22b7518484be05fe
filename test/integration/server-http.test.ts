import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardsCsv } from '../support/registry-csv.js';
import { startStack, type Stack } from '../support/sync-harness.js';
import { JournalAnswer, StatusAnswer } from '../../protocol/api.js';
import { ErrorCode } from '../../protocol/errors.js';
import { callApi } from '../../sync-server/commands/client.js';
import { adminToken } from '../support/operator-api.js';
import { waitFor } from '../support/wait.js';

/** The operator's HTTP API refuses bad requests with coded errors and changes nothing. */
describe('sync-server HTTP API', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('embedded', { enrolListen: { host: '127.0.0.1', port: 0 } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const call = (method: string, path: string, body?: string, base = stack.server.httpUrl) =>
    new Promise<{ status: number; json: { error?: { code: string; message: string } } & Record<string, unknown> }>((resolve, reject) => {
      const req = request(base + path, { method, headers: { authorization: `Bearer ${adminToken(stack)}` } }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(t) as { error?: { code: string; message: string } } }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const cards = () => stack.server.db.prepare('SELECT count(*) FROM cards').pluck().get();

  it('an upload cut short imports nothing', async () => {
    const body = cardsCsv(0, 200);
    const req = request(stack.server.httpUrl + '/v1/import/cards', {
      method: 'POST',
      headers: { 'content-length': String(body.length), authorization: `Bearer ${adminToken(stack)}` },
    });
    req.on('error', () => undefined);
    req.write(body.split('\n').slice(0, 21).join('\n') + '\n'); // 20 whole rows, then the connection drops
    await new Promise((r) => setTimeout(r, 300));
    req.destroy();
    // the import (in its worker thread, import-thread.ts) fails with the upload and is listed so
    await waitFor(async () => ((await call('GET', '/v1/imports?limit=1')).json as unknown as { state: string }[])[0]?.state === 'failed', {
      timeoutMs: 30_000,
      what: 'the cut-short import listed as failed',
    });
    expect(cards()).toBe(0);
    expect(stack.server.publisher.version('transit')).toBe(0);
  });

  it('answers coded errors: unknown endpoint or kind, bad JSON, rules that do not validate', async () => {
    expect(await call('GET', '/v1/nothing')).toMatchObject({ status: 404, json: { error: { code: 'server.not-found' } } });
    expect(await call('POST', '/v1/import/people', 'a,b\n')).toMatchObject({ status: 404, json: { error: { code: 'server.not-found' } } });
    expect(await call('POST', '/v1/config', '{not json')).toMatchObject({ status: 400, json: { error: { code: 'server.bad-request' } } });
    expect(await call('POST', '/v1/config', JSON.stringify({ rules: { schema: 1, tariff: { routes: 5 } } }))).toMatchObject({
      status: 400,
      json: { error: { code: 'server.bad-request' } },
    });
    expect(await call('POST', '/v1/charging/repay', JSON.stringify({ token: 'xyz' }))).toMatchObject({ status: 400 });
    expect(stack.server.db.prepare('SELECT count(*) FROM configs').pluck().get()).toBe(0);
  });

  it('imports over HTTP and reports versions; status and journal answer', async () => {
    const r = await call('POST', '/v1/import/cards', cardsCsv(0, 50));
    expect(r).toMatchObject({ status: 200, json: { report: { rows: 50, applied: 50 }, versions: { transit: 1 } } });
    expect(await call('GET', '/v1/status')).toMatchObject({ status: 200, json: { devices: [], current: { transit: 1 } } });
    expect(await call('GET', '/v1/journal?limit=5')).toMatchObject({ status: 200, json: { entries: [] } });
    const pk = await call('GET', '/v1/public-key');
    expect(String(pk.json.pem)).toContain('BEGIN PUBLIC KEY');
  });

  it('answers refusals by the framework itself with the same codes: body too large, empty, not JSON, wrong media type', async () => {
    const big = JSON.stringify({ name: 'rules', rules: { schema: 1, pad: 'x'.repeat(1.1 * (1 << 20)) } });
    expect(await call('POST', '/v1/config', big)).toMatchObject({
      status: 400,
      json: { error: { code: 'server.bad-request', message: 'request body too large' } },
    });
    expect(await call('POST', '/v1/config', '')).toMatchObject({ status: 400, json: { error: { code: 'server.bad-request' } } });
    expect(await call('POST', '/v1/charging/decline', '[1,')).toMatchObject({
      status: 400,
      json: { error: { code: 'server.bad-request', message: 'request body is not JSON' } },
    });
    expect(await call('GET', '/v1/devices/not%20an%20id/revoke')).toMatchObject({ status: 404, json: { error: { code: 'server.not-found' } } });
    expect(await call('POST', '/v1/devices/not%20an%20id/revoke')).toMatchObject({ status: 404, json: { error: { code: 'server.not-found' } } });
    expect(stack.server.db.prepare('SELECT count(*) FROM configs').pluck().get()).toBe(0);
  });

  it('the enrolment listener serves enrol, rotate, whoami and health only, with a 64 KiB body limit', async () => {
    const enrol = stack.server.enrolUrl!;
    const health = await call('GET', '/v1/health', undefined, enrol);
    expect(health).toMatchObject({ status: 200, json: { ok: true, versions: {} } });
    expect(health.json).not.toHaveProperty('mqtt');
    for (const [m, p] of [
      ['GET', '/v1/status'],
      ['GET', '/v1/journal'],
      ['GET', '/v1/public-key'],
      ['POST', '/v1/enrol-tokens'],
      ['POST', '/v1/import/cards'],
      ['GET', '/v1/devices'],
    ] as const) {
      expect(await call(m, p, m === 'POST' ? '{}' : undefined, enrol)).toMatchObject({ status: 404, json: { error: { code: 'server.not-found' } } });
    }
    expect(await call('POST', '/v1/enrol', JSON.stringify({ pad: 'x'.repeat(70 * 1024) }), enrol)).toMatchObject({
      status: 400,
      json: { error: { code: 'server.bad-request', message: 'request body too large' } },
    });
    expect(await call('POST', '/v1/enrol', '{}', enrol)).toMatchObject({ status: 400, json: { error: { code: 'server.bad-request' } } });
  });

  it('the CLI parses every answer with its schema: an answer of another shape is server.bad-request', async () => {
    const token = adminToken(stack);
    await expect(callApi(stack.server.httpUrl, 'GET', '/v1/status', StatusAnswer, undefined, token)).resolves.toMatchObject({ devices: [] });
    await expect(callApi(stack.server.httpUrl, 'GET', '/v1/status', JournalAnswer, undefined, token)).rejects.toMatchObject({
      code: ErrorCode.ServerBadRequest,
    });
    await expect(callApi(stack.server.httpUrl, 'GET', '/v1/nothing', StatusAnswer, undefined, token)).rejects.toMatchObject({ code: ErrorCode.ServerNotFound });
  });
});
