/**
 * Find the line and column of a value in JSON text by its path, so a
 * validation error can say "config.json:12:5 tariff.routes.7.fullFareKopecks".
 * A tiny scanner over the text; it never throws (returns null when lost).
 */
export interface TextPos {
  line: number; // 1-based
  column: number; // 1-based
}

export function posOfOffset(text: string, offset: number): TextPos {
  let line = 1;
  let col = 1;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return { line, column: col };
}

/** Offset of the value at `path` (or of the deepest existing parent), or null. */
export function locateJsonPath(text: string, path: readonly PropertyKey[]): TextPos | null {
  try {
    let i = 0;
    const ws = () => {
      while (i < text.length && /\s/.test(text[i]!)) i++;
    };
    const skipString = () => {
      i++; // opening quote
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
    };
    const readString = (): string => {
      const s = i;
      skipString();
      return JSON.parse(text.slice(s, i)) as string;
    };
    const skipValue = (): void => {
      ws();
      const c = text[i];
      if (c === '"') return skipString();
      if (c === '{' || c === '[') {
        const close = c === '{' ? '}' : ']';
        i++;
        ws();
        if (text[i] === close) {
          i++;
          return;
        }
        for (;;) {
          ws();
          if (c === '{') {
            skipString();
            ws();
            i++; // ':'
          }
          skipValue();
          ws();
          if (text[i] === ',') i++;
          else {
            i++;
            return;
          }
        }
      }
      while (i < text.length && !/[,\]}\s]/.test(text[i]!)) i++;
    };
    ws();
    let best = i;
    for (const key of path) {
      ws();
      const c = text[i];
      if (c === '{') {
        i++;
        let found = false;
        for (;;) {
          ws();
          if (text[i] === '}') break;
          const k = readString();
          ws();
          i++; // ':'
          ws();
          if (k === String(key)) {
            found = true;
            break;
          }
          skipValue();
          ws();
          if (text[i] === ',') i++;
          else break;
        }
        if (!found) return posOfOffset(text, best);
      } else if (c === '[') {
        i++;
        const want = Number(key);
        let n = 0;
        let found = false;
        for (;;) {
          ws();
          if (text[i] === ']') break;
          if (n === want) {
            found = true;
            break;
          }
          skipValue();
          ws();
          n++;
          if (text[i] === ',') i++;
          else break;
        }
        if (!found) return posOfOffset(text, best);
      } else return posOfOffset(text, best);
      best = i;
    }
    return posOfOffset(text, best);
  } catch {
    return null;
  }
}

/** Line/column of a JSON.parse SyntaxError, from its "position N" text. */
export function syntaxErrorPos(text: string, e: unknown): TextPos | null {
  const m = /position (\d+)/.exec(e instanceof Error ? e.message : '');
  if (m) return posOfOffset(text, Number(m[1]));
  const lc = /line (\d+) column (\d+)/.exec(e instanceof Error ? e.message : '');
  return lc ? { line: Number(lc[1]), column: Number(lc[2]) } : null;
}
