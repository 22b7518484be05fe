import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardsCsv } from '../support/registry-csv.js';
import { startStack, type Stack } from '../support/sync-harness.js';

/** The operator's HTTP API refuses bad requests with coded errors and changes nothing. */
describe('sync-server HTTP API', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('embedded');
  });
  afterAll(async () => {
    await stack?.close();
  });

  const call = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; json: { error?: { code: string } } & Record<string, unknown> }>((resolve, reject) => {
      const req = request(stack.server.httpUrl + path, { method }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(t) as { error?: { code: string } } }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const cards = () => stack.server.db.prepare('SELECT count(*) FROM cards').pluck().get();

  it('an upload cut short imports nothing', async () => {
    const body = cardsCsv(0, 200);
    const req = request(stack.server.httpUrl + '/v1/import/cards', { method: 'POST', headers: { 'content-length': String(body.length) } });
    req.on('error', () => undefined);
    req.write(body.split('\n').slice(0, 21).join('\n') + '\n'); // 20 whole rows, then the connection drops
    await new Promise((r) => setTimeout(r, 300));
    req.destroy();
    await new Promise((r) => setTimeout(r, 500));
    expect(cards()).toBe(0);
    expect(stack.server.publisher.version('transit')).toBe(0);
  });

  it('answers coded errors: unknown endpoint or kind, bad JSON, rules that do not validate', async () => {
    expect(await call('GET', '/v1/nothing')).toMatchObject({ status: 404, json: { error: { code: 'server.not-found' } } });
    expect(await call('POST', '/v1/import/people', 'a,b\n')).toMatchObject({ status: 404, json: { error: { code: 'server.not-found' } } });
    expect(await call('POST', '/v1/config', '{not json')).toMatchObject({ status: 400, json: { error: { code: 'server.bad-request' } } });
    expect(await call('POST', '/v1/config', JSON.stringify({ rules: { schema: 1, tariff: { routes: 5 } } }))).toMatchObject({ status: 400, json: { error: { code: 'server.bad-request' } } });
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
});
