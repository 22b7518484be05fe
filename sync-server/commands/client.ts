import { createReadStream, statSync } from 'node:fs';
import { request } from 'node:http';
import type { z } from 'zod';
import { ErrorAnswer } from '../../protocol/api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7300';

/** A CSV file streamed as the request body. */
interface FileBody {
  file: string;
  onBytes?: (n: number) => void;
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));
const isErrorCode = (c: string): c is ErrorCode => KNOWN_CODES.has(c);

/**
 * Call the running server's HTTP API (protocol/api.ts). An error answer
 * becomes its RcError; an answer that does not match `schema` is
 * server.bad-request (the CLI and the server differ in version).
 */
export async function callApi<T>(server: string, method: 'GET' | 'POST', path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
  const url = new URL(path, server);
  const file = isFileBody(body) ? body : null;
  const { status, json } = await new Promise<{ status: number; json: unknown }>((resolve, reject) => {
    const req = request(url, { method, headers: { 'content-type': file ? 'text/csv' : 'application/json' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 500, json: JSON.parse(Buffer.concat(parts).toString('utf8')) });
        } catch {
          reject(new RcError(ErrorCode.ServerBadRequest, `server answered ${res.statusCode} without JSON`));
        }
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new RcError(ErrorCode.ServerNotRunning, `no sync-server at ${server} (${e.code ?? e.message}); start it with rc-sync-server start`, { server })),
    );
    if (file) {
      const s = createReadStream(file.file);
      s.on('error', (e) => req.destroy(new RcError(ErrorCode.InputInvalid, `cannot read ${file.file}: ${e.message}`, { file: file.file })));
      let n = 0;
      s.on('data', (c) => {
        n += c.length;
        file.onBytes?.(n);
      });
      s.pipe(req);
    } else {
      if (body !== undefined) req.write(JSON.stringify(body));
      req.end();
    }
  });
  if (status >= 400) {
    const e = ErrorAnswer.safeParse(json);
    if (!e.success) throw new RcError(ErrorCode.ServerBadRequest, `HTTP ${status}`);
    const { code, message, context } = e.data.error;
    throw new RcError(isErrorCode(code) ? code : ErrorCode.ServerBadRequest, message, context);
  }
  const p = schema.safeParse(json);
  if (!p.success)
    throw new RcError(ErrorCode.ServerBadRequest, `the server's answer to ${method} ${url.pathname} does not match the API (versions differ?)`, {
      issues: p.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  return p.data;
}

function isFileBody(b: unknown): b is FileBody {
  return typeof b === 'object' && b !== null && 'file' in b && typeof b.file === 'string';
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
