import { expect } from 'vitest';
import { RcError, type ErrorCode } from '../../protocol/errors.js';

/** The code a test expects: one code, one of several, or a pattern (`/^card\./`). */
export type ExpectedCode = ErrorCode | readonly ErrorCode[] | RegExp;

/** A function that always throws (returns never) is synchronous; one returning a promise gives a promise. */
type RcErrorOf<R> = [R] extends [never] ? RcError : R extends PromiseLike<unknown> ? Promise<RcError> : RcError;

function check(e: unknown, code: ExpectedCode | undefined): RcError {
  if (!(e instanceof RcError)) throw new Error(`expected an RcError${code ? ` (${String(code)})` : ''}, got: ${e instanceof Error ? e.stack : String(e)}`);
  if (code instanceof RegExp) expect(e.code).toMatch(code);
  else if (Array.isArray(code)) expect(code).toContain(e.code);
  else if (code !== undefined) expect(e.code).toBe(code);
  return e;
}

function notThrown(code: ExpectedCode | undefined): Error {
  return new Error(`expected an RcError${code ? ` (${String(code)})` : ''}, but nothing was thrown`);
}

/**
 * Expects `fnOrPromise` to fail with an RcError (with `code`, when given) and
 * returns it for further assertions (context, message, no PAN in it).
 * A promise, or a function returning one, gives a promise: `await` it.
 */
export function expectRcError(p: PromiseLike<unknown>, code?: ExpectedCode): Promise<RcError>;
export function expectRcError<R>(f: () => R, code?: ExpectedCode): RcErrorOf<R>;
export function expectRcError(x: PromiseLike<unknown> | (() => unknown), code?: ExpectedCode): RcError | Promise<RcError> {
  let p: PromiseLike<unknown>;
  if (typeof x === 'function') {
    let r: unknown;
    try {
      r = x();
    } catch (e) {
      return check(e, code);
    }
    if (!isThenable(r)) throw notThrown(code);
    p = r;
  } else p = x;
  return Promise.resolve(p).then(
    () => {
      throw notThrown(code);
    },
    (e: unknown) => check(e, code),
  );
}

/**
 * For properties over arbitrary input ("decodes or refuses with X"): the code
 * of the RcError `f` throws, undefined when it does not throw, and a
 * `not an RcError: …` string for any other exception.
 */
export function rcErrorCodeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof RcError ? e.code : `not an RcError: ${String(e)}`;
  }
  return undefined;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
