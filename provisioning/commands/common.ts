import { ERROR_HELP } from '../../protocol/error-help.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';

/** Print an error for the technician (code, message, what to do) and set the exit code. */
export function fail(e: unknown, json: boolean): void {
  const err = e instanceof RcError ? e : new RcError(ErrorCode.InputInvalid, e instanceof Error ? e.message : String(e));
  const help = ERROR_HELP[err.code];
  if (json) process.stdout.write(JSON.stringify({ error: { ...err.toJSON(), ...(help ? { action: help.action } : {}) } }) + '\n');
  else process.stderr.write(`${err.code}: ${err.message}\n${help ? `what to do: ${help.action}\n` : ''}`);
  process.exitCode = 1;
}
