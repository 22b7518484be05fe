// Regenerates the error-code table in README.md from protocol/errors.ts and
// protocol/error-help.ts (between the two marker comments).
import { readFileSync, writeFileSync } from 'node:fs';
import { ErrorCode } from '../protocol/errors.js';
import { ERROR_HELP } from '../protocol/error-help.js';

export function errorTable(): string {
  const rows = Object.values(ErrorCode).map((code) => {
    const h = ERROR_HELP[code];
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    return `| \`${code}\` | ${esc(h.meaning)} | ${esc(h.action)} |`;
  });
  return ['| code | meaning | what to do |', '|---|---|---|', ...rows].join('\n');
}

const START = '<!-- error-table:start -->';
const END = '<!-- error-table:end -->';

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const readme = readFileSync('README.md', 'utf8');
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error('README.md has no error-table markers');
  writeFileSync('README.md', readme.slice(0, a + START.length) + '\n' + errorTable() + '\n' + readme.slice(b));
  console.log('README.md error table regenerated');
}
