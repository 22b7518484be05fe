import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import { TokenHex, YearMonth } from '../../protocol/lists.js';
import * as tokenMod from '../../protocol/token.js';
import { DEV_TOKEN_KEY, deriveToken, maskPan, tokenKeyFromEnv, type TokenKey } from '../../protocol/token.js';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { formatProblem } from '../config/validate.js';
import type { Tap } from '../../protocol/rules/types.js';
import { readListsFile } from '../store/lists-file.js';
import { deviceCategoryTable } from '../../protocol/categories.js';
import { Store } from '../store/store.js';
import { processTap } from '../runtime/process-tap.js';

/**
 * `rc-device replay --config FILE --lists FILE --taps FILE [--db FILE]`
 *
 * Runs taps through the real rules and store and prints one JSON decision per
 * line. Taps file: JSON Lines, one tap per line:
 *   {"time": "2026-11-24T08:15:00+03:00", "token": "<32 hex>" | "pan": "<digits>",
 *    "psn"?: "01", "reader"?: "entry" | "exit", "expiry"?: "YYYY-MM", "route"?: "7", "vehicle"?: "A123"}
 * A PAN is tokenised on read (RC_TOKEN_KEY / RC_TOKEN_KEY_VERSION, else the
 * development key) and never stored or printed; only the masked PAN is.
 * Without --db the store lives in memory; with --db the file keeps lists,
 * counters and journal between runs (and lists already held are not re-applied).
 */
export const ReplayTap = z
  .object({
    time: z.iso.datetime({ offset: true, message: 'time: ISO-8601 with an offset, e.g. 2026-11-24T08:15:00+03:00' }),
    token: TokenHex.optional(),
    pan: z
      .string()
      .regex(/^\d{12,19}$/, 'pan: 12 to 19 digits')
      .optional(),
    psn: z
      .string()
      .regex(/^[0-9A-Fa-f]{2}$/, 'psn: 2 hex digits')
      .optional(),
    reader: z.enum(['entry', 'exit']).optional(),
    expiry: YearMonth.optional(),
    route: z.string().min(1).max(32).optional(),
    vehicle: z.string().min(1).max(32).optional(),
  })
  .strict()
  .refine((t) => (t.token === undefined) !== (t.pan === undefined), { message: 'exactly one of "token" and "pan"', path: ['token'] });
export type ReplayTap = z.infer<typeof ReplayTap>;

export interface ReplayLine {
  line: number;
  time: string;
  token: string;
  maskedPan?: string;
  seq: number;
  result: string;
  reason: string;
  fareKopecks: number;
  benefit: string | null;
  display: { ru: string; en: string };
  direction?: string;
  route?: string;
  meal?: string;
  flags: string[];
}

function resolveKey(): { key: TokenKey; dev: boolean } {
  const m = tokenMod as unknown as Record<string, unknown>;
  if (typeof m.resolveTokenKey === 'function') {
    const k = (m.resolveTokenKey as () => TokenKey | { key: TokenKey } | null)();
    if (k && 'key' in k && Buffer.isBuffer((k as TokenKey).key)) return { key: k as TokenKey, dev: (k as TokenKey).version === DEV_TOKEN_KEY.version };
  }
  const env = tokenKeyFromEnv();
  return env ? { key: env, dev: false } : { key: DEV_TOKEN_KEY, dev: true };
}

/** Parse a taps file (JSONL): every line is validated before any tap runs. PANs become tokens here. */
export function parseTapsFile(text: string, file: string, key: TokenKey): Array<{ line: number; tap: Tap; maskedPan?: string }> {
  const out: Array<{ line: number; tap: Tap; maskedPan?: string }> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const src = lines[i]!.trim();
    if (src === '' || src.startsWith('#')) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(src);
    } catch (e) {
      throw new RcError(ErrorCode.InputInvalid, formatProblem(file, { line: i + 1, path: '', message: `not valid JSON: ${(e as Error).message}` }), {
        file,
        line: i + 1,
      });
    }
    const r = ReplayTap.safeParse(raw);
    if (!r.success) {
      const iss = r.error.issues[0];
      const path = (iss?.path ?? []).map(String).join('.');
      // the message never echoes the input (it could be a PAN)
      throw new RcError(ErrorCode.InputInvalid, formatProblem(file, { line: i + 1, path, message: iss?.message ?? 'invalid' }), { file, line: i + 1, path });
    }
    const t = r.data;
    let token = t.token;
    let masked: string | undefined;
    if (t.pan !== undefined) {
      const pan = Buffer.from(t.pan, 'ascii');
      token = deriveToken(pan, { expiry: t.expiry ?? null, psn: t.psn ?? null }, key); // a pan-expiry key needs the tap's expiry (card.missing-data without)
      masked = maskPan(pan);
      pan.fill(0);
    }
    const wall = Date.parse(t.time);
    out.push({
      line: i + 1,
      tap: {
        wallTime: wall,
        monotonicMs: wall, // replay: the recorded time is the only clock
        bootId: 'replay',
        direction: t.reader ?? null,
        card: { token: token!, expiry: t.expiry ?? null },
        ...(t.route !== undefined ? { route: t.route } : {}),
        ...(t.vehicle !== undefined ? { vehicle: t.vehicle } : {}),
      },
      ...(masked !== undefined ? { maskedPan: masked } : {}),
    });
  }
  return out;
}

export interface ReplayOptions {
  config: string;
  lists?: string;
  taps: string;
  db?: string;
}

/** Run a replay; calls `emit` with each decision line. Returns the number of taps. */
export function replay(opts: ReplayOptions, emit: (l: ReplayLine) => void, warn: (s: string) => void = () => {}): number {
  const cfg: Config = loadConfigFile(opts.config);
  const lists = opts.lists ? readListsFile(opts.lists, deviceCategoryTable(cfg)) : [];
  let text: string;
  try {
    text = readFileSync(opts.taps, 'utf8');
  } catch (e) {
    throw new RcError(ErrorCode.InputInvalid, `${opts.taps}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: opts.taps });
  }
  const { key, dev } = resolveKey();
  const taps = parseTapsFile(text, opts.taps, key);
  if (dev && taps.some((t) => t.maskedPan !== undefined)) warn('rc-device replay: no RC_TOKEN_KEY set: PANs tokenised with the DEVELOPMENT key');
  const store = Store.open(opts.db ?? ':memory:', {
    deviceId: cfg.sync?.deviceId ?? cfg.device.id,
    synchronous: opts.db ? 'FULL' : 'OFF',
    categories: () => deviceCategoryTable(cfg),
  });
  try {
    for (const l of lists) store.applySnapshot(l);
    for (const { line, tap, maskedPan } of taps) {
      const { decision: d, entry } = processTap(store, tap, cfg);
      emit({
        line,
        time: new Date(tap.wallTime).toISOString(),
        token: tap.card.token,
        ...(maskedPan !== undefined ? { maskedPan } : {}),
        seq: entry.seq,
        result: d.result,
        reason: d.reason,
        fareKopecks: d.fareKopecks,
        benefit: d.benefit,
        display: d.display,
        ...(d.direction !== undefined ? { direction: d.direction } : {}),
        ...(d.route !== undefined ? { route: d.route } : {}),
        ...(d.meal !== undefined ? { meal: d.meal } : {}),
        flags: d.flags,
      });
    }
  } finally {
    store.close();
  }
  return taps.length;
}

export function register(program: Command): void {
  program
    .command('replay')
    .description('run recorded taps through the real rules and store; print one JSON decision per line')
    .requiredOption('--config <file>', 'device config (JSON, docs/config.md)')
    .option('--lists <file>', 'lists file (JSON: {"lists":[{scope,version,entries}]})')
    .requiredOption('--taps <file>', 'taps, JSON Lines: {"time","token"|"pan","reader"?}')
    .option('--db <file>', 'SQLite store to use and keep (default: in memory)')
    .action((opts: ReplayOptions) => {
      try {
        replay(
          opts,
          (l) => process.stdout.write(JSON.stringify(l) + '\n'),
          (s) => process.stderr.write(s + '\n'),
        );
      } catch (e) {
        if (isRcError(e)) {
          process.stderr.write(`rc-device replay: ${e.code}: ${e.message}\n`);
          process.exitCode = 1;
          return;
        }
        throw e;
      }
    });
}
