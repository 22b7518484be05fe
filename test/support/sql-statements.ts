import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

/**
 * Every SQL statement the sync-server prepares or executes, read from its sources with the TypeScript compiler
 * (not recorded at run time: the sources cover every branch, a run only the ones its flows take).
 *
 * A statement's text is the argument of `db.prepare(…)` / `db.exec(…)` evaluated statically: string literals,
 * templates whose substitutions are constants (followed through `const` declarations, also imported ones),
 * conditionals (each branch gives a variant) and `+`. A substitution the compiler cannot reduce to a constant
 * (a WHERE clause built at run time, say) leaves the statement `dynamic`, listed with the spot that stopped it.
 */
export interface SqlStatement {
  /** Path relative to the repository, and the line of the call. */
  file: string;
  line: number;
  /** 'prepare' or 'exec' */
  call: string;
  /** The function the call is in (ensure…Schema / migrate… are the schema path). */
  fn: string;
  /** Every text the argument can take (conditionals multiply them); empty when dynamic. */
  variants: string[];
  /** Why the text could not be reduced to constants, when it could not. */
  dynamic?: string;
}

const MAX_VARIANTS = 32;

class Dynamic extends Error {}

function sourcesUnder(dir: string, skip: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (skip(p)) continue;
    if (statSync(p).isDirectory()) out.push(...sourcesUnder(p, skip));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/**
 * A call into sync-server/db/sql.ts (a dialect fragment): the text it gives for the dialect being checked,
 * from its name and its arguments after the db (evaluated statically like the rest).
 */
export type FragmentOf = (name: string, args: string[]) => string;

/**
 * For a substitution built at run time (a WHERE clause of the filters given): sample texts that stand for it,
 * by where it is (`file:function`) and its source text; undefined leaves the statement dynamic.
 */
export type SampleOf = (at: string, expr: string) => string[] | undefined;

/** The statements of `root/sync-server` (device/ excepted: it stays SQLite only; db/ too, see below). */
export function collectSqlStatements(root: string, fragment: FragmentOf, sample: SampleOf = () => undefined): SqlStatement[] {
  const fragmentsFile = join(root, 'sync-server', 'db', 'sql.ts');
  const serverDir = join(root, 'sync-server');
  // db/ is the data-access layer: its statements are each dialect's own (db/sql.ts's fragments are checked where they are used)
  const files = sourcesUnder(serverDir, (p) => p === join(serverDir, 'device') || p === join(serverDir, 'db'));
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
  });
  const checker = program.getTypeChecker();
  const out: SqlStatement[] = [];

  const product = (parts: string[][]): string[] => {
    let acc = [''];
    for (const p of parts) {
      const next: string[] = [];
      for (const a of acc) for (const b of p) next.push(a + b);
      acc = [...new Set(next)];
      if (acc.length > MAX_VARIANTS) throw new Dynamic('too many variants');
    }
    return acc;
  };

  const literalTypes = (e: ts.Expression): string[] | undefined => {
    const t = checker.getTypeAtLocation(e);
    const parts = t.isUnion() ? t.types : [t];
    const vals: string[] = [];
    for (const p of parts) {
      if (p.isStringLiteral()) vals.push(p.value);
      else if (p.isNumberLiteral()) vals.push(String(p.value));
      else if (p.flags & ts.TypeFlags.Number) vals.push('1');
      else return undefined;
    }
    return vals;
  };

  let here = '';
  const values = (e: ts.Expression, depth = 0): string[] => {
    if (depth > 20) throw new Dynamic('too deep');
    if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
    if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e)) return values(e.expression, depth + 1);
    if (ts.isTemplateExpression(e)) {
      const parts: string[][] = [[e.head.text]];
      for (const s of e.templateSpans) parts.push(values(s.expression, depth + 1), [s.literal.text]);
      return product(parts);
    }
    if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.PlusToken) return product([values(e.left, depth + 1), values(e.right, depth + 1)]);
    if (ts.isConditionalExpression(e)) return [...new Set([...values(e.whenTrue, depth + 1), ...values(e.whenFalse, depth + 1)])];
    if (ts.isCallExpression(e)) {
      let sym = checker.getSymbolAtLocation(e.expression);
      if (sym && sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
      if (sym?.valueDeclaration?.getSourceFile().fileName === fragmentsFile) {
        const args = e.arguments.slice(1).map((a) => values(a, depth + 1)[0]!);
        return [fragment(sym.name, args)];
      }
      // `xs.map(() => '?').join(',')`: a list of placeholders, one is enough to check
      if (/^\w+\.map\(\(\) => '\?'\)\.join\('?, ?'\)$/.test(e.getText().replace(/"/g, "'"))) return ['?'];
    }
    const lit = literalTypes(e);
    if (lit) return lit;
    if (ts.isIdentifier(e)) {
      let sym = checker.getSymbolAtLocation(e);
      if (sym && sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
      const decl = sym?.valueDeclaration;
      if (decl && ts.isVariableDeclaration(decl) && decl.initializer && ts.getCombinedNodeFlags(decl) & ts.NodeFlags.Const)
        return values(decl.initializer, depth + 1);
    }
    const where = whereOf(e, depth);
    if (where) return where;
    const stand = sample(here, e.getText());
    if (stand) return stand;
    throw new Dynamic(e.getText());
  };

  /**
   * `w.sql` where `w = whereEqual({ col: …, … }, [{ cond: '…' }, …])` (settlement/queries.ts): every filter and every
   * condition at once, and none.
   */
  const whereOf = (e: ts.Expression, depth: number): string[] | undefined => {
    if (!ts.isPropertyAccessExpression(e) || e.name.text !== 'sql' || !ts.isIdentifier(e.expression)) return undefined;
    const decl = checker.getSymbolAtLocation(e.expression)?.valueDeclaration;
    const init = decl && ts.isVariableDeclaration(decl) ? decl.initializer : undefined;
    if (!init || !ts.isCallExpression(init) || init.expression.getText() !== 'whereEqual') return undefined;
    const [filters, extra] = init.arguments;
    if (!filters || !ts.isObjectLiteralExpression(filters)) return undefined;
    const conds = filters.properties.map((p) => `${p.name?.getText() ?? '?'} = ?`);
    const visit = (n: ts.Node): void => {
      if (ts.isPropertyAssignment(n) && n.name.getText() === 'cond') conds.push(values(n.initializer, depth + 1)[0]!);
      ts.forEachChild(n, visit);
    };
    if (extra) visit(extra);
    return [`WHERE ${conds.join(' AND ')}`, ''];
  };

  const enclosingFn = (n: ts.Node): string => {
    for (let p: ts.Node | undefined = n.parent; p; p = p.parent) {
      if ((ts.isFunctionDeclaration(p) || ts.isMethodDeclaration(p)) && p.name) return p.name.getText();
      if (ts.isClassDeclaration(p) && p.name) return p.name.text;
    }
    return '';
  };

  for (const f of files) {
    const sf = program.getSourceFile(f);
    if (!sf) continue;
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && n.arguments.length >= 1) {
        const call = n.expression.name.text;
        const recv = checker.getTypeAtLocation(n.expression.expression);
        if ((call === 'prepare' || call === 'exec') && recv.getProperty('prepare') && recv.getProperty('pragma')) {
          const arg = n.arguments[0]!;
          const at = { file: relative(root, f), line: sf.getLineAndCharacterOfPosition(n.getStart()).line + 1, call, fn: enclosingFn(n) };
          here = `${at.file}:${at.fn}`;
          try {
            out.push({ ...at, variants: values(arg) });
          } catch (err) {
            if (!(err instanceof Dynamic)) throw err;
            out.push({ ...at, variants: [], dynamic: err.message });
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}
