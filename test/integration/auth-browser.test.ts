/**
 * The session cookie in a real browser (Debian's headless Chromium via playwright-core): rc_session is set
 * with Secure over plain http://127.0.0.1 and http://localhost. Chromium treats loopback as a secure context,
 * so it keeps the cookie and sends it back; HttpOnly keeps it away from the page's script; and the CSRF token
 * the sign-in answers is what lets the page write.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser } from '../../sync-server/auth/users.js';
import { launchChromium } from '../support/browser.js';
import { startStack, type Stack } from '../support/sync-harness.js';

const PASSWORD = 'browser password 1234';
let stack: Stack;
let ctx: BrowserContext | null = null;
let dir = '';

beforeAll(async () => {
  stack = await startStack('embedded');
  await addUser(stack.server.db, { name: 'vera', role: 'operator', password: PASSWORD });
  dir = mkdtempSync(join(tmpdir(), 'rc-auth-browser-'));
  ctx = await launchChromium(join(dir, 'profile'));
}, 60_000);
afterAll(async () => {
  await ctx?.close().catch(() => undefined);
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the session cookie in headless Chromium', () => {
  for (const host of ['127.0.0.1', 'localhost']) {
    it(`over http://${host}: the Secure cookie is kept and sent back, hidden from script; writes need the CSRF token`, async () => {
      const origin = `http://${host}:${new URL(stack.server.httpUrl).port}`;
      const page = await ctx!.newPage();
      try {
        await page.goto(`${origin}/v1/health`);
        const r = await page.evaluate(async (password) => {
          const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
            fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
          const login = await post('/v1/session', { username: 'vera', password });
          const { csrf } = (await login.json()) as { csrf: string };
          const session = await fetch('/v1/session');
          const status = await fetch('/v1/status');
          const body = { kind: 'bus', route: '7', ttlSec: 600 };
          const noCsrf = await post('/v1/enrol-tokens', body);
          const withCsrf = await post('/v1/enrol-tokens', body, { 'x-csrf-token': csrf });
          const out = await post('/v1/session/logout', {}, { 'x-csrf-token': csrf });
          const after = await fetch('/v1/session');
          return {
            login: login.status,
            session: session.status,
            status: status.status,
            noCsrf: noCsrf.status,
            withCsrf: withCsrf.status,
            logout: out.status,
            after: after.status,
            scriptSees: (globalThis as unknown as { document: { cookie: string } }).document.cookie,
          };
        }, PASSWORD);
        expect(r).toEqual({ login: 200, session: 200, status: 200, noCsrf: 403, withCsrf: 200, logout: 200, after: 401, scriptSees: '' });
        const cookies = await ctx!.cookies(origin);
        expect(cookies.find((c) => c.name === 'rc_session')).toBeUndefined();
      } finally {
        await page.close();
      }
    }, 60_000);
  }
});
