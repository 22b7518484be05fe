/**
 * COPY's text format as the imports' COPY writes it (sync-server/db/pg-copy.ts copyLine; the COPY itself runs against
 * a real PostgreSQL in test/integration/import-copy-pg.test.ts): NULL as \N, the four characters COPY would read as
 * delimiters escaped, numbers as text, and a value PostgreSQL cannot store refused with its code, never sent.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { copyLine } from '../../sync-server/db/pg-copy.js';
import { expectRcError } from '../support/errors.js';

describe('copyLine', () => {
  it('writes a row tab-separated with NULL as \\N and numbers as text', () => {
    expect(copyLine([1, 'p1', null, 'ab12', 2031])).toBe('1\tp1\t\\N\tab12\t2031\n');
  });

  it('escapes backslash, tab, newline and carriage return, so a cell never splits or ends a row', () => {
    expect(copyLine(['a\\b', 'c\td', 'e\nf', 'g\rh', '\\N'])).toBe('a\\\\b\tc\\td\te\\nf\tg\\rh\t\\\\N\n');
  });

  it('refuses a NUL character and a number that is not finite (db.value-out-of-range)', () => {
    expectRcError(() => copyLine(['a\0b']), ErrorCode.DbValueOutOfRange);
    expectRcError(() => copyLine([Number.NaN]), ErrorCode.DbValueOutOfRange);
  });
});
