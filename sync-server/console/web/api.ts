/// <reference lib="dom" />
import { ERROR_HELP } from '../../../protocol/error-help.js';
import type { ErrorCode } from '../../../protocol/errors.js';
import { h } from './dom.js';
import { t } from './i18n/index.js';

/** A coded error from the API (or one the page found itself before calling it). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly context?: Record<string, unknown>,
  ) {
    super(message);
  }
}

let csrf = '';
/** The session's CSRF token (POST /v1/session, GET /v1/session): sent as x-csrf-token on every write. */
export function setCsrf(v: string): void {
  csrf = v;
}

function fromAnswer(status: number, body: unknown): ApiError {
  const e = (body as { error?: { code?: string; message?: string; context?: Record<string, unknown> } } | null)?.error;
  return new ApiError(status, e?.code ?? 'server.internal', e?.message ?? `HTTP ${status}`, e?.context);
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

/** Call the JSON API: the session cookie goes with it; non-GET calls carry the CSRF token. */
export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  const json = parseJson(text);
  if (!res.ok) throw fromAnswer(res.status, json);
  return json as T;
}

/** Upload a CSV with XHR (its upload progress events), to POST /v1/import/:kind. */
export function uploadCsv<T>(
  kind: string,
  file: Blob,
  skipInvalid: boolean,
  onProgress: (sent: number, total: number) => void,
  onSent: () => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/v1/import/${encodeURIComponent(kind)}${skipInvalid ? '?skipInvalid=true' : ''}`);
    xhr.setRequestHeader('content-type', 'text/csv');
    if (csrf) xhr.setRequestHeader('x-csrf-token', csrf);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.upload.onload = () => onSent();
    xhr.onerror = () => reject(new ApiError(0, 'server.not-running', 'the server did not answer'));
    xhr.onload = () => {
      const json = parseJson(xhr.responseText);
      if (xhr.status === 200) resolve(json as T);
      else reject(fromAnswer(xhr.status, json));
    };
    xhr.send(file);
  });
}

/** An error as the operator sees it: the code, the message, the issues, and the help text of protocol/error-help.ts. */
export function errorBox(e: unknown): HTMLElement {
  const err = e instanceof ApiError ? e : new ApiError(0, 'server.internal', e instanceof Error ? e.message : String(e));
  const help = (ERROR_HELP as Record<string, { meaning: string; action: string } | undefined>)[err.code as ErrorCode];
  const issues = Array.isArray(err.context?.issues) ? (err.context.issues as unknown[]).map(String) : [];
  return h(
    'div',
    { class: 'error', role: 'alert', 'data-code': err.code },
    h('strong', {}, `${t('common.error')}: `, h('code', {}, err.code)),
    h('p', {}, err.message),
    issues.length
      ? h(
          'ul',
          {},
          issues.map((i) => h('li', {}, i)),
        )
      : null,
    help ? h('p', { class: 'help' }, help.meaning, ' ', h('em', {}, `${t('common.help')}: `), help.action) : null,
  );
}
