// ESLint (typescript-eslint, type-aware): only rules that catch real bugs; the unused exports and
// files are knip's (knip.json), the layers depcruise's. `make lint-ts` runs both.
// Why type-aware typescript-eslint and not Biome (measured on this repository, #28): Biome lints in
// 0.4 s but its promise rules infer types itself and miss the promises of package types (execa,
// node:fs/promises): it found none of the 7 floating/misused promises this config finds.
import tseslint from 'typescript-eslint';

// node:test's test()/describe() return promises that the runner itself awaits.
const nodeTest = {
  from: 'package',
  package: 'node:test',
  name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
};

export default [
  { ignores: ['node_modules/**', 'dist/**', 'runs/**', 'reports/**', 'bench/results/**', '.cache/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      // One program from tsconfig.json (src, baselines, datasets, test, bench): as fast as the
      // project service here, and the same files tsc checks.
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [nodeTest] }],
      // A promise where a void callback is expected (forEach, timers, event handlers) or a condition.
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Everywhere, not only in exported types: the code base has none, and `unknown` serves.
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  // Sizes (#28): lines of at most 120 characters everywhere (Prettier breaks code; comments are
  // wrapped by hand; strings, template literals, regular expressions and URLs are data and exempt).
  {
    files: ['**/*.{ts,mjs,js,cjs}'],
    rules: {
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
    },
  },
  // Source files of at most 300 lines and functions of at most 60 (code lines: blanks and comments
  // do not count). Tests are exempt: a node:test describe() callback holds its cases.
  {
    files: ['**/*.{ts,mjs,js,cjs}'],
    ignores: ['**/*.test.ts', 'test/**'],
    rules: {
      'max-lines': ['error', { max: 300, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
];
