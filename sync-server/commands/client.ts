import { createReadStream, statSync } from 'node:fs';
import { request } from 'node:http';
import { ErrorCode, RcError } from '../../protocol/errors.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7300';

/** Call the running server's HTTP API; an error answer becomes its RcError. */
export async function callApi(server: string, method: string, path: string, body?: unknown | { file: string; onBytes?: (n: number) => void }): Promise<unknown> {
  const url = new URL(path, server);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: body && !('file' in (body as object)) ? { 'content-type': 'application/json' } : { 'content-type': 'text/csv' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch {
          return reject(new RcError(ErrorCode.ServerBadRequest, `server answered ${res.statusCode} without JSON`));
        }
        if ((res.statusCode ?? 500) >= 400) {
          const e = (json as { error?: { code?: string; message?: string; context?: Record<string, unknown> } }).error;
          return reject(new RcError((e?.code ?? ErrorCode.ServerBadRequest) as ErrorCode, e?.message ?? `HTTP ${res.statusCode}`, e?.context));
        }
        resolve(json);
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(new RcError(ErrorCode.ServerNotRunning, `no sync-server at ${server} (${e.code ?? e.message}); start it with rc-sync-server start`, { server })));
    if (body && typeof body === 'object' && 'file' in body) {
      const b = body as { file: string; onBytes?: (n: number) => void };
      const s = createReadStream(b.file);
      s.on('error', (e) => req.destroy(new RcError(ErrorCode.InputInvalid, `cannot read ${b.file}: ${e.message}`, { file: b.file })));
      let n = 0;
      s.on('data', (c) => {
        n += c.length;
        b.onBytes?.(n);
      });
      s.pipe(req);
    } else {
      if (body !== undefined) req.write(JSON.stringify(body));
      req.end();
    }
  });
}

export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    throw new RcError(ErrorCode.InputInvalid, `cannot read ${file}`, { file });
  }
}

/** Print an RcError for a CLI user and set the exit code. */
export function fail(e: unknown, json: boolean): void {
  const err = e instanceof RcError ? e : new RcError(ErrorCode.ServerBadRequest, String(e));
  if (json) process.stdout.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  else process.stderr.write(`${err.code}: ${err.message}\n${err.context ? JSON.stringify(err.context, null, 2) + '\n' : ''}`);
  process.exitCode = 1;
}
