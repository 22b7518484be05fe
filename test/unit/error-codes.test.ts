import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import { ERROR_HELP } from '../../protocol/error-help.js';
import { errorTable } from '../../scripts/gen-error-table.js';

describe('error codes', () => {
  const codes = Object.values(ErrorCode);

  it('are unique and of the form area.kebab-name', () => {
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toMatch(/^[a-z]+\.[a-z0-9-]+$/);
  });

  it('every code has a meaning and an action for technicians', () => {
    const missing = codes.filter((c) => !ERROR_HELP[c]?.meaning || !ERROR_HELP[c]?.action);
    expect(missing).toEqual([]);
  });

  it('the README lists the current table (run npm run docs:errors after adding a code)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(errorTable());
  });

  it('RcError carries its code and serialises without losing it', () => {
    const e = new RcError(ErrorCode.CardRemoved, 'card left the field', { apdus: 3 });
    expect(isRcError(e, ErrorCode.CardRemoved)).toBe(true);
    expect(isRcError(e, ErrorCode.CardTimeout)).toBe(false);
    expect(JSON.parse(JSON.stringify(e))).toEqual({ code: 'card.removed', message: 'card left the field', context: { apdus: 3 } });
  });
});
