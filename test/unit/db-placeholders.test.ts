import { describe, expect, it } from 'vitest';
import { isRcError } from '../../protocol/errors.js';
import { toPgPlaceholders } from '../../sync-server/db/placeholders.js';

describe("SQLite's placeholders in PostgreSQL's form", () => {
  it('numbers each ? in order', () => {
    expect(toPgPlaceholders('SELECT a FROM t WHERE b = ? AND c IN (?, ?) LIMIT ?')).toEqual({
      text: 'SELECT a FROM t WHERE b = $1 AND c IN ($2, $3) LIMIT $4',
      count: 4,
      names: [],
    });
  });

  it('leaves ? alone in string literals, E-strings, quoted identifiers, dollar quotes and comments', () => {
    const sql = `SELECT '?''?', E'\\'?', "a?""b", $$ ? $$, $x$ ? $x$ -- ?\n/* ? /* ? */ ? */ FROM t WHERE k = ?`;
    const r = toPgPlaceholders(sql);
    expect(r.count).toBe(1);
    expect(r.text).toBe(sql.replace(/= \?$/, '= $1'));
  });

  it('keeps casts and $n-like text intact: ::bigint, a column named e', () => {
    expect(toPgPlaceholders("SELECT ?::bigint, e'x', e FROM t WHERE price$ = ?").text).toBe("SELECT $1::bigint, e'x', e FROM t WHERE price$ = $2");
  });

  it('numbers @name parameters once per name, in order of first use', () => {
    expect(toPgPlaceholders('INSERT INTO t(a, b, c) VALUES (@a, @b, @a) -- @c')).toEqual({
      text: 'INSERT INTO t(a, b, c) VALUES ($1, $2, $1) -- @c',
      count: 2,
      names: ['a', 'b'],
    });
    expect(toPgPlaceholders("SELECT 'x@y.ru', user@host FROM t").count).toBe(0);
  });

  it('refuses a statement that mixes ? and @name, with a coded error', () => {
    try {
      toPgPlaceholders('SELECT ? , @a');
      expect.unreachable();
    } catch (e) {
      expect(isRcError(e, 'db.query-failed')).toBe(true);
    }
  });
});
