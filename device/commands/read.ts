import type { Command } from 'commander';
import { readMirCard } from '../emv/read.js';
import { resolveTokenKey } from '../emv/token-key.js';
import { PcscReaderSource } from '../reader/pcsc.js';
import { waitForCard } from '../reader/wait.js';
import type { CardRead } from '../reader/types.js';
import { ErrorCode, isRcError, RcError } from '../../protocol/errors.js';
import { rootLogger } from '../../protocol/log.js';

/**
 * `rc-device read [--reader NAME] [--timeout-ms N] [--json]`: wait for a card
 * on the named (default: first) PC/SC reader, read it, print one result.
 *
 * Exit codes: 0 read; 1 bad option or token key; 2 no reader or pcscd
 * unavailable; 3 card is not Mir; 4 card read failed; 5 no card in time.
 */

export const READ_EXIT = { ok: 0, usage: 1, noReader: 2, notMir: 3, readFailed: 4, timeout: 5 } as const;

export interface ReadOutcome {
  exit: number;
  json: Record<string, unknown>;
  human: string;
}

export function outcomeOfRead(r: CardRead): ReadOutcome {
  const ms = Math.round(r.ms * 10) / 10;
  return {
    exit: READ_EXIT.ok,
    json: {
      scheme: r.scheme,
      aid: r.aid,
      maskedPan: r.maskedPan,
      expiry: r.expiry,
      psn: r.psn,
      par: r.par,
      token: r.token,
      keyVersion: r.keyVersion,
      apdus: r.apdus,
      ms,
    },
    human: `Mir card ${r.maskedPan}, expires ${r.expiry}, PSN ${r.psn ?? 'none'}${r.par ? `, PAR ${r.par}` : ''}: token ${r.token} (key v${r.keyVersion}), ${r.apdus} APDUs in ${ms} ms`,
  };
}

export function outcomeOfError(e: unknown): ReadOutcome {
  const err = isRcError(e)
    ? e
    : new RcError(ErrorCode.ReaderTransmit, 'unexpected failure while reading the card', { reason: (e as Error)?.message ?? String(e) });
  switch (err.code) {
    case ErrorCode.CardNotMir: {
      const scheme = typeof err.context?.scheme === 'string' ? err.context.scheme : 'unknown';
      const aid = typeof err.context?.aid === 'string' ? err.context.aid : null;
      return { exit: READ_EXIT.notMir, json: { error: 'not-mir', scheme, aid }, human: `not a Mir card (${scheme}${aid ? `, ${aid}` : ''}): refused` };
    }
    case ErrorCode.PcscUnavailable:
    case ErrorCode.ReaderNotFound:
    case ErrorCode.ReaderBindingMissing:
      return { exit: READ_EXIT.noReader, json: { error: err.code, message: err.message }, human: `no reader: ${err.message} (${err.code})` };
    case ErrorCode.ReaderTimeout:
      return { exit: READ_EXIT.timeout, json: { error: err.code, message: err.message }, human: `no card: ${err.message} (${err.code})` };
    case ErrorCode.TokenKeyInvalid:
      return { exit: READ_EXIT.usage, json: { error: err.code, message: err.message }, human: `${err.message} (${err.code})` };
    default:
      return { exit: READ_EXIT.readFailed, json: { error: err.code, message: err.message }, human: `card read failed: ${err.message} (${err.code})` };
  }
}

export function register(program: Command): void {
  program
    .command('read')
    .description('wait for a card on a PC/SC reader, read it (Mir only) and print one result')
    .option('--reader <name>', 'reader name (default: the first reader); a unique part of the name is enough')
    .option('--timeout-ms <n>', 'how long to wait for a card', '30000')
    .option('--json', 'print exactly one JSON line')
    .action(async (o: { reader?: string; timeoutMs: string; json?: boolean }) => {
      const log = rootLogger();
      const quiet = process.env.RC_LOG_LEVEL ?? 'warn';
      const print = (out: ReadOutcome): void => {
        const line = o.json ? JSON.stringify(out.json) : out.human;
        process.stdout.write(line + '\n', () => process.exit(out.exit));
      };
      const timeoutMs = Number(o.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 86_400_000) {
        print({
          exit: READ_EXIT.usage,
          json: { error: ErrorCode.InputInvalid, message: '--timeout-ms must be a whole number of milliseconds' },
          human: '--timeout-ms must be a whole number of milliseconds',
        });
        return;
      }
      let out: ReadOutcome;
      let source: PcscReaderSource | null = null;
      try {
        const tokenKey = resolveTokenKey(undefined, undefined, log.child({ component: 'token' }));
        source = await PcscReaderSource.create({ log: log.child({ component: 'reader' }, { level: quiet }) });
        const { channel } = await waitForCard(source, { reader: o.reader, timeoutMs, failIfUnavailable: true });
        const r = await readMirCard(channel, { now: new Date(), tokenKey, log: log.child({ component: 'emv' }, { level: quiet }) });
        out = outcomeOfRead(r);
      } catch (e) {
        out = outcomeOfError(e);
      }
      await source?.close();
      print(out);
    });
}
