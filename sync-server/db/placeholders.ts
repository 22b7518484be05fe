import { ErrorCode, RcError } from '../../protocol/errors.js';

/**
 * SQLite's placeholders in PostgreSQL's form: each `?` becomes `$1`, `$2`, … in order, and better-sqlite3's named
 * `@name` becomes `$k` (the same name, the same number). Text inside string literals ('…', E'…'), quoted identifiers
 * ("…"), dollar-quoted bodies ($tag$…$tag$) and comments (-- … and nested /* … *\/) is copied unchanged.
 */
export interface PgSql {
  text: string;
  /** How many parameters the statement takes. */
  count: number;
  /** For `@name` statements: the names in parameter-number order (empty for `?` statements). */
  names: string[];
}

const IDENT = /[A-Za-z0-9_]/;

export function toPgPlaceholders(sql: string): PgSql {
  let out = '';
  let count = 0;
  const names: string[] = [];
  let i = 0;
  const n = sql.length;
  const copyUntil = (end: number) => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === "'") {
      // E'…' allows backslash escapes; '' is an escaped quote in both
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !IDENT.test(sql[i - 2]!));
      let j = i + 1;
      while (j < n) {
        if (escapes && sql[j] === '\\') j += 2;
        else if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
        else if (sql[j] === "'") break;
        else j++;
      }
      copyUntil(Math.min(j + 1, n));
    } else if (c === '"') {
      let j = i + 1;
      while (j < n && !(sql[j] === '"' && sql[j + 1] !== '"')) j += sql[j] === '"' ? 2 : 1;
      copyUntil(Math.min(j + 1, n));
    } else if (c === '-' && next === '-') {
      const j = sql.indexOf('\n', i);
      copyUntil(j < 0 ? n : j);
    } else if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        const two = sql.slice(j, j + 2);
        if (two === '/*' || two === '*/') {
          depth += two === '/*' ? 1 : -1;
          j += 2;
        } else j++;
      }
      copyUntil(j);
    } else if (c === '$' && (i === 0 || !IDENT.test(sql[i - 1]!))) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        copyUntil(end < 0 ? n : end + tag[0].length);
      } else copyUntil(i + 1);
    } else if (c === '?') {
      out += `$${++count}`;
      i++;
    } else if (c === '@' && next !== undefined && /[A-Za-z_]/.test(next) && (i === 0 || !IDENT.test(sql[i - 1]!))) {
      const m = /^@([A-Za-z_][A-Za-z0-9_]*)/.exec(sql.slice(i))!;
      let k = names.indexOf(m[1]!);
      if (k < 0) k = names.push(m[1]!) - 1;
      out += `$${k + 1}`;
      i += m[0].length;
    } else {
      out += c;
      i++;
    }
  }
  if (count > 0 && names.length > 0) throw new RcError(ErrorCode.DbQueryFailed, 'a statement mixes ? and @name parameters');
  return { text: out, count: count + names.length, names };
}
