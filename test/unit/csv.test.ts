import { describe, expect, it } from 'vitest';
import { ErrorCode, isRcError } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { csvRecords, DEFAULT_CSV_LIMITS, type CsvSource } from '../../sync-server/csv.js';
import { parseImport } from '../../sync-server/import.js';

/** CSV text as an upload source, in the chunks given. */
async function* text(...chunks: string[]): CsvSource {
  yield* chunks;
}

async function all(src: CsvSource) {
  const out: { line: number; cells: string[] }[] = [];
  for await (const r of csvRecords(src)) out.push(r);
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isRcError(e) ? e.code : `not coded: ${String(e)}`;
  }
  return 'no error';
}

/** `mb` megabytes of `fill`, after `head`, in 1 MiB chunks: nothing of it is ever held whole by the test. */
async function* flood(head: string, fill: string, mb: number) {
  yield head;
  const chunk = fill.repeat(Math.ceil((1024 * 1024) / fill.length));
  for (let i = 0; i < mb; i++) yield chunk;
}

describe('CSV records (csv-parse, bounded)', () => {
  it('reads quotes, commas and "" inside quotes, CRLF, a BOM, and any chunking, with line numbers', async () => {
    const csv = '\ufeffa,b\r\n"x, y","say ""hi"""\r\n\r\n3,4\r\n';
    const whole = await all(text(csv));
    const bytewise = await all(
      (async function* () {
        for (const b of Buffer.from(csv)) yield Buffer.from([b]);
      })(),
    );
    expect(whole).toEqual([
      { line: 1, cells: ['a', 'b'] },
      { line: 2, cells: ['x, y', 'say "hi"'] },
      { line: 4, cells: ['3', '4'] },
    ]);
    expect(bytewise).toEqual(whole);
  });

  it('a header followed by a 200 MB row of commas is refused early with a coded error, without building it', async () => {
    const before = process.memoryUsage().rss;
    const t0 = performance.now();
    const code = await codeOf(
      parseImport('cards', flood('person_id,pan,psn,expiry\n', ',', 200), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-12-01' }),
    );
    expect(code).toBe(ErrorCode.ServerImportTooLarge);
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect((process.memoryUsage().rss - before) / 1024 / 1024).toBeLessThan(100);
  });

  it('a header of a million columns is refused at once (it used to stall the server for 25 s)', async () => {
    const header = Array.from({ length: 1_000_000 }, (_, i) => `c${i}`).join(',');
    const t0 = performance.now();
    const code = await codeOf(
      parseImport('cards', text(header + '\np1,2200000000000004,01,2030-01\n'), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-12-01' }),
    );
    expect(code).toBe(ErrorCode.ServerImportTooLarge);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  it('more columns than allowed in a short line, and a file over its byte limit, are refused', async () => {
    const wide = Array.from({ length: DEFAULT_CSV_LIMITS.maxColumns + 1 }, () => 'x').join(',');
    expect(await codeOf(all(text(`a,b\n${wide}\n`)))).toBe(ErrorCode.ServerImportTooLarge);
    const small = { ...DEFAULT_CSV_LIMITS, maxBytes: 1000 };
    const big = (async function* () {
      for (let i = 0; i < 100; i++) yield 'a,b\n'.repeat(10);
    })();
    let code = 'no error';
    try {
      for await (const _ of csvRecords(big, small)) void _;
    } catch (e) {
      code = isRcError(e) ? e.code : String(e);
    }
    expect(code).toBe(ErrorCode.ServerImportTooLarge);
  });

  it('malformed CSV (an unclosed quote) is server.import-invalid with its line', async () => {
    expect(await codeOf(all(text('a,b\n1,"open\n')))).toBe(ErrorCode.ServerImportInvalid);
  });
});
