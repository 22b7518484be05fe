import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

// The import boundaries of eslint.config.js (issue #9): a wrong import between the programs fails `npm run lint`.
const root = fileURLToPath(new URL('../..', import.meta.url));
const BOUNDARY_RULES = new Set(['no-restricted-imports', 'no-restricted-syntax']);
const eslint = new ESLint({ cwd: root, ruleFilter: ({ ruleId }) => BOUNDARY_RULES.has(ruleId) });

/** The boundary messages eslint reports for `code` as if it were the file `filePath` (relative to the repository). */
async function violations(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath, warnIgnored: true });
  return (result?.messages ?? []).filter((m) => m.ruleId !== null && BOUNDARY_RULES.has(m.ruleId)).map((m) => m.message);
}

describe('import boundaries between the programs', () => {
  it.each([
    ['sync-server/x.ts', "import { Store } from '../device/store/index.js';\nexport { Store };"],
    ['sync-server/commands/x.ts', "import { provision } from '../../provisioning/ops.js';\nexport { provision };"],
    ['device/runtime/x.ts', "import { startServer } from '../../sync-server/server.js';\nexport { startServer };"],
    ['device/x.ts', "export * from '../provisioning/ops.js';"],
    ['protocol/x.ts', "import type { Config } from '../device/config/index.js';\nexport type { Config };"],
    ['protocol/wire/x.ts', "export { startServer } from '../../sync-server/server.js';"],
    ['provisioning/commands/x.ts', "import { startServer } from '../../sync-server/server.js';\nexport { startServer };"],
    ['device/io/protocols/x.ts', "export const m = await import('../../../sync-server/server.js');"],
    ['device/x.ts', "export type S = import('../sync-server/server.js').RunningServer;"],
  ])('a forbidden import is reported: %s', async (filePath, code) => {
    const found = await violations(filePath, code);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/Boundary: /);
  });

  it.each([
    ['provisioning/x.ts', "import { Store } from '../device/store/index.js';\nexport { Store };"],
    ['provisioning/commands/x.ts', "export { ErrorCode } from '../../protocol/errors.js';"],
    ['sync-server/x.ts', "import { ErrorCode } from '../protocol/errors.js';\nimport { x } from './devices.js';\nexport { ErrorCode, x };"],
    ['sync-server/commands/x.ts', "export { x } from '../device.js';"],
    ['device/runtime/x.ts', "export { ErrorCode } from '../../protocol/errors.js';\nexport { Store } from '../store/index.js';"],
    ['protocol/wire/x.ts', "export { ErrorCode } from '../errors.js';\nexport { z } from 'zod';"],
    ['provisioning/x.ts', "export const m = await import('../device/reader/pcsc.js');"],
    ['test/unit/x.ts', "export { startServer } from '../../sync-server/server.js';\nexport { Store } from '../../device/store/index.js';"],
    ['demo/x.ts', "export { startServer } from '../sync-server/server.js';\nexport { Store } from '../device/store/index.js';"],
    ['scripts/x.ts', "export { startServer } from '../sync-server/server.js';\nexport { provision } from '../provisioning/ops.js';"],
  ])('an allowed import is not reported: %s', async (filePath, code) => {
    expect(await violations(filePath, code)).toEqual([]);
  });

  it('the tree as it is crosses no boundary', async () => {
    const results = await eslint.lintFiles(['sync-server', 'device', 'protocol', 'provisioning']);
    expect(results.length).toBeGreaterThan(50);
    const found = results.flatMap((r) =>
      r.messages.filter((m) => m.ruleId !== null && BOUNDARY_RULES.has(m.ruleId)).map((m) => `${r.filePath.slice(root.length)}:${m.line} ${m.message}`),
    );
    expect(found).toEqual([]);
  }, 120_000);
});
