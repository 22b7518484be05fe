// ESLint flat config: @eslint/js recommended + typescript-eslint recommended (syntax only: the type-checked presets
// cost a full program build, too slow for CI on 2 cores; `tsc --noEmit` checks the types), and the boundary rules
// between the programs. Formatting is prettier's job (.prettierrc.json), not eslint's.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * Who may import whom (issue #9): each program is deployed on its own, and protocol/ is the only shared code.
 *   sync-server/  imports neither device/ nor provisioning/
 *   device/       imports neither sync-server/ nor provisioning/
 *   protocol/     imports only protocol/ (and packages)
 *   provisioning/ may import device/ and protocol/
 *   test/, demo/, scripts/ and the root configs may import anything
 * The rules resolve nothing: they match the relative specifier against the file's depth, so `../../device/x.js`
 * in sync-server/commands/a.ts is caught and `./devices.js` is not. Static imports and `export … from` go through
 * no-restricted-imports; `import('…')` expressions and `import('…').T` types through no-restricted-syntax.
 */
export const BOUNDARIES = [
  {
    folder: 'sync-server',
    forbidden: ['device', 'provisioning', 'demo', 'test', 'scripts'],
    why: 'sync-server/ runs on the operator server: it imports only sync-server/ and protocol/ (shared code goes to protocol/).',
  },
  {
    folder: 'device',
    forbidden: ['sync-server', 'provisioning', 'demo', 'test', 'scripts'],
    why: 'device/ runs on the validator: it imports only device/ and protocol/ (shared code goes to protocol/).',
  },
  {
    folder: 'protocol',
    forbidden: ['device', 'sync-server', 'provisioning', 'demo', 'test', 'scripts'],
    why: 'protocol/ is what crosses a program boundary: it imports only protocol/ and packages.',
  },
  {
    folder: 'provisioning',
    forbidden: ['sync-server', 'demo', 'test', 'scripts'],
    why: 'provisioning/ runs on the device: it imports only provisioning/, device/ and protocol/ (talk to the server over HTTP/MQTT).',
  },
];

/** Deepest folder level the boundary rules cover (device/io/protocols/x.ts is depth 2). */
const MAX_DEPTH = 6;

/** `^(\./)?(\.\./){n}(a|b)(/|$)`: a specifier that leaves the folder (n = depth + 1) into a forbidden one. */
function escapingRegex(depth, forbidden) {
  // \x2F is '/': esquery's regex literals cannot hold a slash, and the same source serves both rules
  return `^(\\.\\x2F)?(\\.\\.\\x2F){${depth + 1}}(${forbidden.join('|')})(\\x2F|$)`;
}

function boundaryConfigs() {
  const out = [];
  for (const { folder, forbidden, why } of BOUNDARIES) {
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      const regex = escapingRegex(depth, forbidden);
      const message = `Boundary: ${why} See eslint.config.js (BOUNDARIES).`;
      out.push({
        name: `boundaries/${folder}/depth-${depth}`,
        files: [`${folder}/${'*/'.repeat(depth)}*.ts`],
        rules: {
          'no-restricted-imports': ['error', { patterns: [{ regex, message }] }],
          'no-restricted-syntax': [
            'error',
            { selector: `ImportExpression[source.value=/${regex}/]`, message },
            { selector: `TSImportType[argument.literal.value=/${regex}/]`, message },
          ],
        },
      });
    }
  }
  return out;
}

export default defineConfig(
  {
    name: 'ignores',
    // .rc-demo/: the demo's scratch data; coverage/: vitest's report
    ignores: ['dist/', 'node_modules/', 'coverage/', '.rc-demo/', 'test/fixtures/**/*.json'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    name: 'project',
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // `let { s, path } = fresh()` where only `s` is reassigned later: one destructuring, one `let`
      'prefer-const': ['error', { destructuring: 'all' }],
      // `_`-prefixed parameters and destructured rest siblings are deliberate (an interface's unused argument,
      // `const { pan: _, ...safe } = x` to drop a field); everything else unused is an error
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    name: 'tests',
    files: ['test/**/*.ts'],
    rules: {
      // tests poke at private state and at hand-built malformed input on purpose
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  ...boundaryConfigs(),
);
