import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { locateJsonPath, syntaxErrorPos, type TextPos } from './json-locate.js';

/** One validation problem, as a technician reads it. */
export interface Problem {
  path: string; // e.g. tariff.routes.7.fullFareKopecks ("" for the whole document)
  message: string;
  line?: number;
  column?: number;
}

export function pathString(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join('.');
}

/** "file:line:col: path: message" */
export function formatProblem(file: string, p: Problem): string {
  const where = p.line !== undefined ? `${file}:${p.line}:${p.column ?? 1}` : file;
  return `${where}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** zod issues → problems with line/column when the JSON text is known. */
export function problemsOf(error: z.ZodError, text?: string, basePath: readonly PropertyKey[] = []): Problem[] {
  return error.issues.slice(0, 20).map((iss) => {
    const full = [...basePath, ...iss.path];
    const pos: TextPos | null = text !== undefined ? locateJsonPath(text, full) : null;
    return { path: pathString(full), message: iss.message, ...(pos ? { line: pos.line, column: pos.column } : {}) };
  });
}

/** Throw one RcError for a list of problems: the message names the file, place and what is wrong. */
export function invalid(code: ErrorCode, file: string, problems: Problem[], extra?: Record<string, unknown>): never {
  const first = problems[0] ?? { path: '', message: 'invalid' };
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  throw new RcError(code, formatProblem(file, first) + more, {
    file,
    path: first.path,
    ...(first.line !== undefined ? { line: first.line, column: first.column } : {}),
    problems,
    ...extra,
  });
}

/** Parse JSON text or throw `code` naming the file, line and column. */
export function parseJsonText(text: string, file: string, code: ErrorCode): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const pos = syntaxErrorPos(text, e);
    invalid(code, file, [{ path: '', message: `not valid JSON: ${(e as Error).message}`, ...(pos ?? {}) }]);
  }
}

/** Read a file as UTF-8 or throw `code` (not found / unreadable). */
export function readTextFile(file: string, code: ErrorCode = ErrorCode.ConfigNotFound): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new RcError(code, `${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
}

/** Validate with a zod schema or throw `code` with file + path + line + message. */
export function validateOrThrow<T extends z.ZodType>(schema: T, raw: unknown, file: string, code: ErrorCode, text?: string): z.output<T> {
  const r = schema.safeParse(raw);
  if (!r.success) invalid(code, file, problemsOf(r.error, text));
  return r.data;
}
