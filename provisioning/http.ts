import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';

/**
 * The device's calls to the sync-server. A network failure becomes
 * provision.server-unreachable; an error answer becomes its RcError (the
 * server's code); an answer that does not match the schema server.bad-request.
 */
export async function call<T>(server: string, method: 'GET' | 'POST', path: string, schema: z.ZodType<T>, body?: unknown, timeoutMs = 15_000): Promise<T> {
  let url: URL;
  try {
    url = new URL(path, server);
  } catch {
    throw new RcError(ErrorCode.ProvisionServerUnreachable, `not a server URL: ${server}`, { server });
  }
  const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const json = await new Promise<{ status: number; json: unknown }>((resolve, reject) => {
    const r = req(url, { method, headers: { 'content-type': 'application/json' }, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 500, json: JSON.parse(Buffer.concat(parts).toString('utf8')) });
        } catch {
          reject(
            new RcError(ErrorCode.ProvisionServerUnreachable, `${server} answered HTTP ${res.statusCode} without JSON: is it a Resident Card sync-server?`, {
              server,
            }),
          );
        }
      });
      res.on('error', (e) => reject(new RcError(ErrorCode.ProvisionServerUnreachable, `connection to ${server} broke: ${e.message}`, { server })));
    });
    r.on('timeout', () => r.destroy(new Error('timed out')));
    r.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new RcError(
          ErrorCode.ProvisionServerUnreachable,
          `cannot reach the sync-server at ${server} (${e.code ?? e.message}); check the network and --server`,
          { server },
        ),
      ),
    );
    if (body !== undefined) r.write(JSON.stringify(body));
    r.end();
  });
  if (json.status >= 400) {
    const e = (json.json as { error?: { code?: string; message?: string; context?: Record<string, unknown> } }).error;
    const known = Object.values(ErrorCode) as string[];
    const code = e?.code && known.includes(e.code) ? (e.code as ErrorCode) : ErrorCode.ServerBadRequest;
    throw new RcError(code, e?.message ?? `HTTP ${json.status}`, e?.context);
  }
  const p = schema.safeParse(json.json);
  if (!p.success)
    throw new RcError(ErrorCode.ServerBadRequest, `the server's answer to ${path} does not match the protocol (versions differ?)`, {
      issues: p.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  return p.data;
}
