import { createReadStream, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { answerError, exchangeJson, parseAnswer } from '../../protocol/http-client.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7300';
/** `start`'s default data directory (where it writes admin.token). */
export const DEFAULT_DATA_DIR = './rc-sync-data';

/** Where the CLI finds its API token (the options of the command being run). */
export interface Credentials {
  tokenFile?: string;
  data?: string;
}
let cliCredentials: Credentials = {};

function readToken(file: string, required: boolean): string | null {
  try {
    const t = readFileSync(file, 'utf8').trim();
    if (t) return t;
  } catch {
    // a missing default file is "no token"; a named one is an error below
  }
  if (required) throw new RcError(ErrorCode.AuthNoCredentials, `cannot read an API token from ${file}`, { file });
  return null;
}

/**
 * The CLI's API token, in this order: --token-file FILE, env RC_API_TOKEN, env RC_API_TOKEN_FILE, then
 * admin.token in --data DIR (or the default data dir), which `start` rewrites at every start. Null when none.
 */
export function apiToken(c: Credentials = cliCredentials, env: NodeJS.ProcessEnv = process.env): string | null {
  if (c.tokenFile) return readToken(c.tokenFile, true);
  if (env.RC_API_TOKEN) return env.RC_API_TOKEN.trim();
  if (env.RC_API_TOKEN_FILE) return readToken(env.RC_API_TOKEN_FILE, true);
  return readToken(join(c.data ?? DEFAULT_DATA_DIR, 'admin.token'), false);
}

/** Every command that talks to the server (it has --server) also takes --token-file and --data; their values are used by callApi. */
export function addCredentialOptions(program: Command): void {
  const visit = (c: Command) => {
    if (c.options.some((o) => o.long === '--server')) {
      c.option('--token-file <file>', 'API token to call the server with (else RC_API_TOKEN, RC_API_TOKEN_FILE, DATA/admin.token)');
      if (!c.options.some((o) => o.long === '--data'))
        c.option('--data <dir>', `the server's data directory: its admin.token is used (default ${DEFAULT_DATA_DIR})`);
      c.hook('preAction', (cmd) => {
        const o = cmd.opts<{ tokenFile?: string; data?: string }>();
        cliCredentials = { ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}), ...(o.data ? { data: o.data } : {}) };
      });
    }
    for (const sub of c.commands) visit(sub);
  };
  visit(program);
}

/** A CSV file streamed as the request body. */
interface FileBody {
  file: string;
  onBytes?: (n: number) => void;
}

/**
 * Call the running server's HTTP API (protocol/api.ts). An error answer
 * becomes its RcError; an answer that does not match `schema` is
 * server.bad-request (the CLI and the server differ in version).
 */
export async function callApi<T>(
  server: string,
  method: 'GET' | 'POST',
  path: string,
  schema: z.ZodType<T>,
  body?: unknown,
  token: string | null = apiToken(),
): Promise<T> {
  const url = new URL(path, server);
  const file = isFileBody(body) ? body : null;
  const headers: Record<string, string> = { 'content-type': file ? 'text/csv' : 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const { status, json } = await exchangeJson(
    request(url, { method, headers }),
    {
      connection: (e) =>
        new RcError(ErrorCode.ServerNotRunning, `no sync-server at ${server} (${e.code ?? e.message}); start it with rc-sync-server start`, { server }),
      notJson: (status) => new RcError(ErrorCode.ServerBadRequest, `server answered ${status} without JSON`),
    },
    (req) => {
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
    },
  );
  if (status >= 400) {
    const err = answerError(status, json);
    if (err.code === ErrorCode.AuthUnauthenticated && !token)
      throw new RcError(ErrorCode.AuthNoCredentials, "no API token: pass --data DIR (the server's data directory), --token-file FILE or set RC_API_TOKEN");
    throw err;
  }
  return parseAnswer(schema, json, `the server's answer to ${method} ${url.pathname} does not match the API (versions differ?)`);
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
