import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ErrorCode, isRcError, RcError } from '../../protocol/errors.js';
import { createVirtualCard, parseVCardSpec, type VCardSpec } from '../vcard/spec.js';
import { connectVpcd } from '../vcard/vpcd.js';

/**
 * `rc-device vcard --port N [--host H] --spec FILE|JSON`: a virtual card in
 * the field of a vpcd reader slot (pcscd with the vsmartcard-vpcd driver),
 * until it is killed (SIGTERM/SIGINT: the card leaves the field), the card
 * leaves by itself (a removal fault) or vpcd goes away.
 *
 * Run it as its own process: the smartcard binding's synchronous calls would
 * deadlock a virtual card served on the PC/SC client's own event loop.
 *
 * Exit codes: 0 card left the field; 1 bad spec; 2 vpcd not reachable.
 * stdout: one JSON line {"event":"inserted","host":…,"port":…} when the card
 * is in the field, {"event":"removed","apdus":N} when it left.
 */

function readSpec(arg: string): VCardSpec {
  const text = arg.trimStart().startsWith('{') ? arg : readSpecFile(arg);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new RcError(ErrorCode.InputInvalid, 'the card spec is not valid JSON', { reason: (e as Error).message });
  }
  return parseVCardSpec(raw) as VCardSpec;
}

function readSpecFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new RcError(ErrorCode.InputInvalid, 'cannot read the card spec file', { path, reason: (e as NodeJS.ErrnoException).code ?? 'error' });
  }
}

function fail(e: unknown, code: number): never {
  const err = isRcError(e) ? e.toJSON() : { code: 'error', message: (e as Error).message };
  process.stderr.write(JSON.stringify({ error: err.code, message: err.message, ...('context' in err && err.context ? { context: err.context } : {}) }) + '\n');
  process.exit(code);
}

export function register(program: Command): void {
  program
    .command('vcard')
    .description('serve a virtual card to a vpcd reader slot (tests, demos); see README "Card reader and virtual cards"')
    .requiredOption('--port <n>', 'vpcd slot TCP port (Debian default: 35963 and 35964)')
    .option('--host <host>', 'vpcd host', '127.0.0.1')
    .requiredOption('--spec <file|json>', 'card spec: a JSON file or inline JSON (synthetic EMV card or recorded trace)')
    .action(async (o: { port: string; host: string; spec: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) fail(new RcError(ErrorCode.InputInvalid, '--port must be 1..65535', { port: o.port }), 1);
      let card;
      try {
        card = createVirtualCard(readSpec(o.spec));
      } catch (e) {
        fail(e, 1);
      }
      let conn;
      try {
        conn = await connectVpcd(card, { port, host: o.host });
      } catch (e) {
        fail(e, 2);
      }
      const c = conn;
      const leave = () => void c.remove();
      process.once('SIGTERM', leave);
      process.once('SIGINT', leave);
      process.stdout.write(JSON.stringify({ event: 'inserted', host: o.host, port }) + '\n');
      await c.closed;
      process.stdout.write(JSON.stringify({ event: 'removed', apdus: c.apdus }) + '\n', () => process.exit(0));
    });
}
