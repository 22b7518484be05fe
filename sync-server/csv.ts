import { CsvError, parse } from 'csv-parse';
import { Readable } from 'node:stream';
import { ErrorCode, RcError } from '../protocol/errors.js';

/**
 * CSV records from an upload, streamed through csv-parse, with the limits
 * checked on the bytes before anything big is built: a record (line) longer
 * than `maxRecordBytes`, more than `maxColumns` cells, or a file over
 * `maxBytes` is refused (`server.import-too-large`) as soon as the parser sees
 * it. (A 200 MB row of commas used to be split into 100 million strings and
 * abort the process; a million-column header stalled it for 25 s.)
 */
export interface CsvLimits {
  maxBytes: number;
  maxRecordBytes: number;
  maxColumns: number;
}

export const DEFAULT_CSV_LIMITS: CsvLimits = {
  maxBytes: 2 * 1024 * 1024 * 1024, // 2 GiB: ten million card rows and room
  maxRecordBytes: 16 * 1024, // our widest row is under 200 bytes
  maxColumns: 32, // our widest file has 7 columns
};

export interface CsvRecord {
  /** 1-based line number of the record's first line in the file. */
  line: number;
  cells: string[];
}

const tooLarge = (message: string, context: Record<string, unknown>) =>
  new RcError(ErrorCode.ServerImportTooLarge, message, {
    ...context,
    report: { rows: 0, applied: 0, rejected: 0, errors: [{ line: Number(context.line ?? 0), column: '', reason: message }] },
  });

/** The file's text in chunks of any size (an HTTP body, a file stream, or strings in tests). */
export type CsvSource = AsyncIterable<string | Uint8Array>;

/**
 * The limits, checked on the bytes as they stream in, before csv-parse builds
 * anything: csv-parse bounds a field (max_record_size) but not the number of
 * fields in a record, so a row of 200 MB of commas would still become an array
 * of 200 million strings. Quote-aware: a newline or comma inside quotes is data.
 */
class LimitScanner {
  private inQuote = false;
  private recordBytes = 0;
  private commas = 0;
  private line = 1;
  private total = 0;
  constructor(private readonly limits: CsvLimits) {}

  scan(b: Uint8Array): void {
    this.total += b.length;
    if (this.total > this.limits.maxBytes)
      throw tooLarge(`the file is larger than ${this.limits.maxBytes} bytes`, { maxBytes: this.limits.maxBytes, line: this.line });
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c === 0x22)
        this.inQuote = !this.inQuote; // "" inside quotes toggles twice: parity holds
      else if (!this.inQuote && c === 0x0a) {
        this.recordBytes = 0;
        this.commas = 0;
        this.line++;
        continue;
      } else if (!this.inQuote && c === 0x2c && ++this.commas >= this.limits.maxColumns)
        throw tooLarge(`line ${this.line}: more than ${this.limits.maxColumns} columns`, { line: this.line, maxColumns: this.limits.maxColumns });
      if (++this.recordBytes > this.limits.maxRecordBytes)
        throw tooLarge(`line ${this.line}: a record longer than ${this.limits.maxRecordBytes} bytes`, {
          line: this.line,
          maxRecordBytes: this.limits.maxRecordBytes,
        });
    }
  }
}

export async function* csvRecords(source: CsvSource, limits: CsvLimits = DEFAULT_CSV_LIMITS): AsyncGenerator<CsvRecord> {
  const scanner = new LimitScanner(limits);
  const counted = Readable.from(
    (async function* () {
      for await (const chunk of source) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        scanner.scan(b);
        yield b;
      }
    })(),
    { objectMode: false },
  );
  const parser = counted.pipe(
    parse({
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
      max_record_size: limits.maxRecordBytes,
      info: true,
      encoding: 'utf8',
    }),
  );
  counted.on('error', (e) => parser.destroy(e));
  try {
    for await (const r of parser as AsyncIterable<{ record: string[]; info: { lines: number; bytes: number } }>) {
      if (r.record.length > limits.maxColumns)
        throw tooLarge(`line ${r.info.lines}: ${r.record.length} columns, at most ${limits.maxColumns}`, { line: r.info.lines, columns: r.record.length });
      yield { line: r.info.lines, cells: r.record };
    }
  } catch (e) {
    if (e instanceof CsvError) {
      const line = (e as CsvError & { lines?: number }).lines ?? 0;
      if (e.code === 'CSV_MAX_RECORD_SIZE')
        throw tooLarge(`line ${line}: a record longer than ${limits.maxRecordBytes} bytes`, { line, maxRecordBytes: limits.maxRecordBytes });
      throw new RcError(ErrorCode.ServerImportInvalid, `line ${line}: not valid CSV (${e.code})`, {
        report: { rows: 0, applied: 0, rejected: 0, errors: [{ line, column: '', reason: e.code }] },
      });
    }
    throw e;
  } finally {
    counted.destroy();
  }
}
