/**
 * Tests call the operator's HTTP API through here, so that credentials are added in one place
 * (issue 12: every route but health answers 401 without a session or a token).
 * `stack` is anything with the server's URL and its data dir (where `start` writes the admin token).
 */
export interface OperatorTarget {
  httpUrl: string;
  dataDir: string;
}

/** fetch() against the operator API as the server's own admin (the token `start` writes into the data dir). */
export function operatorFetch(target: OperatorTarget, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.body !== undefined && init.body !== null && !headers.has('content-type')) headers.set('content-type', 'application/json');
  return fetch(`${target.httpUrl}${path}`, { ...init, headers });
}
