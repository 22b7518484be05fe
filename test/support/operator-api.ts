import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Tests call the operator's HTTP API through here, so that credentials are added in one place
 * (issue 12: every route but health answers 401 without a session or a token).
 * `stack` is anything with the server's URL and its data dir (where `start` writes the admin token).
 */
export interface OperatorTarget {
  httpUrl: string;
  dataDir: string;
}

/** The admin API token the running server wrote into its data dir (rewritten at every start). */
export function adminToken(target: { dataDir: string }): string {
  return readFileSync(join(target.dataDir, 'admin.token'), 'utf8').trim();
}

/** fetch() against the operator API as the server's own admin (the token `start` writes into the data dir); an Authorization header given wins. */
export function operatorFetch(target: OperatorTarget, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.body !== undefined && init.body !== null && !headers.has('content-type')) headers.set('content-type', 'application/json');
  if (!headers.has('authorization')) headers.set('authorization', `Bearer ${adminToken(target)}`);
  return fetch(`${target.httpUrl}${path}`, { ...init, headers });
}
