import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { call } from '../../provisioning/http.js';
import { ErrorCode } from '../../protocol/errors.js';
import { callApi } from '../../sync-server/commands/client.js';
import { expectRcError } from '../support/errors.js';

/**
 * The two HTTP clients that share protocol/http-client.ts (the technician's tool and the server's CLI): a JSON
 * answer is checked against its schema, an error answer becomes the server's RcError, a foreign code, a body that
 * is not JSON and an answer of another shape are server.bad-request (or the tool's own code), no server is each
 * tool's own "cannot reach" code. One plain HTTP server on a free port answers by path.
 */
const Answer = z.object({ ok: z.literal(true), n: z.number() });
let server: Server;
let base = '';
const seen: { method: string; body: string; auth: string | undefined }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', body, auth: req.headers.authorization });
      const json = (status: number, v: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.url === '/ok') return json(200, { ok: true, n: body ? (JSON.parse(body) as { n: number }).n : 0 });
      if (req.url === '/known') return json(409, { error: { code: ErrorCode.InputInvalid, message: 'no such row', context: { row: 3 } } });
      if (req.url === '/foreign') return json(400, { error: { code: 'future.code', message: 'from a newer server' } });
      if (req.url === '/unauth') return json(401, { error: { code: ErrorCode.AuthUnauthenticated, message: 'sign in' } });
      if (req.url === '/shapeless') return json(500, { oops: true });
      if (req.url === '/other-shape') return json(200, { ok: true, n: 'seven' });
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not an API</html>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

/** A port nothing listens on: one the kernel just gave out and took back. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('the CLI and the provisioning tool read answers alike', () => {
  it('a JSON answer that matches the schema is returned; the body and the token are sent', async () => {
    expect(await callApi(base, 'POST', '/ok', Answer, { n: 7 }, 'tok-1')).toEqual({ ok: true, n: 7 });
    expect(seen.at(-1)).toEqual({ method: 'POST', body: '{"n":7}', auth: 'Bearer tok-1' });
    expect(await call(base, 'POST', '/ok', Answer, { n: 8 })).toEqual({ ok: true, n: 8 });
    expect(seen.at(-1)).toEqual({ method: 'POST', body: '{"n":8}', auth: undefined });
    expect(await call(base, 'GET', '/ok', Answer)).toEqual({ ok: true, n: 0 });
  });

  it("an error answer becomes the server's code, message and context", async () => {
    for (const e of [
      await expectRcError(callApi(base, 'GET', '/known', Answer, undefined, 't'), ErrorCode.InputInvalid),
      await expectRcError(call(base, 'GET', '/known', Answer), ErrorCode.InputInvalid),
    ]) {
      expect(e.message).toBe('no such row');
      expect(e.context).toEqual({ row: 3 });
    }
  });

  it('a code this version does not know, or an error answer without the error shape, is server.bad-request', async () => {
    expect((await expectRcError(callApi(base, 'GET', '/foreign', Answer, undefined, 't'), ErrorCode.ServerBadRequest)).message).toBe('from a newer server');
    expect((await expectRcError(call(base, 'GET', '/foreign', Answer), ErrorCode.ServerBadRequest)).message).toBe('from a newer server');
    expect((await expectRcError(callApi(base, 'GET', '/shapeless', Answer, undefined, 't'), ErrorCode.ServerBadRequest)).message).toBe('HTTP 500');
    expect((await expectRcError(call(base, 'GET', '/shapeless', Answer), ErrorCode.ServerBadRequest)).message).toBe('HTTP 500');
  });

  it('the CLI without a token that the server refuses says how to pass one; with a token it is the server’s refusal', async () => {
    expect((await expectRcError(callApi(base, 'GET', '/unauth', Answer, undefined, null), ErrorCode.AuthNoCredentials)).message).toMatch(/--token-file/);
    await expectRcError(callApi(base, 'GET', '/unauth', Answer, undefined, 't'), ErrorCode.AuthUnauthenticated);
  });

  it('an answer of another shape is server.bad-request naming the field', async () => {
    const cli = await expectRcError(callApi(base, 'GET', '/other-shape', Answer, undefined, 't'), ErrorCode.ServerBadRequest);
    expect(cli.message).toBe("the server's answer to GET /other-shape does not match the API (versions differ?)");
    expect(cli.context).toEqual({ issues: [expect.stringMatching(/^n: /)] });
    const tool = await expectRcError(call(base, 'GET', '/other-shape', Answer), ErrorCode.ServerBadRequest);
    expect(tool.message).toBe("the server's answer to /other-shape does not match the protocol (versions differ?)");
    expect(tool.context).toEqual({ issues: [expect.stringMatching(/^n: /)] });
  });

  it('a body that is not JSON: the CLI says bad request, the tool asks whether it is a Resident Card server', async () => {
    expect((await expectRcError(callApi(base, 'GET', '/html', Answer, undefined, 't'), ErrorCode.ServerBadRequest)).message).toBe(
      'server answered 200 without JSON',
    );
    expect((await expectRcError(call(base, 'GET', '/html', Answer), ErrorCode.ProvisionServerUnreachable)).message).toMatch(
      /without JSON: is it a Resident Card sync-server\?/,
    );
  });

  it("no server there: each tool's own code, naming the server", async () => {
    const nobody = `http://127.0.0.1:${await closedPort()}`;
    const cli = await expectRcError(callApi(nobody, 'GET', '/ok', Answer, undefined, 't'), ErrorCode.ServerNotRunning);
    expect(cli.context).toEqual({ server: nobody });
    expect(cli.message).toMatch(/ECONNREFUSED/);
    const tool = await expectRcError(call(nobody, 'GET', '/ok', Answer), ErrorCode.ProvisionServerUnreachable);
    expect(tool.context).toEqual({ server: nobody });
    expect(tool.message).toMatch(/ECONNREFUSED/);
  });
});
