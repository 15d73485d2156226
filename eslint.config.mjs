import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';

/**
 * The layering of shared/: contracts, metering and chargeback are plain TypeScript. They import no
 * Azure SDK, no Redis or HTTP client and no Functions types, and never reach into the adapters,
 * the composition root, the functions or the local runtime. Only adapters/, config/ and
 * functions/ talk to the outside world.
 */
export const SDK_PACKAGES = [
  '@azure/*',
  'applicationinsights',
  'durable-functions',
  'ioredis',
  'microsoft-cognitiveservices-speech-sdk',
  'openai',
  'undici',
];
const OUTSIDE_THE_DOMAIN = ['**/adapters/*', '**/config/*', '**/functions/*', '**/local/*', '**/bench/*'];
const layering = (extra = []) => [
  'error',
  {
    patterns: [
      {
        group: SDK_PACKAGES,
        message:
          'contracts/, metering/ and chargeback/ import no SDK: put the I/O in shared/adapters/ behind a port.',
      },
      {
        group: [...OUTSIDE_THE_DOMAIN, ...extra],
        message:
          'contracts/, metering/ and chargeback/ depend on ports, never on adapters, config, functions or local/.',
      },
    ],
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/prefer-nullish-coalescing': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      eqeqeq: ['error', 'always'],
      'no-var': 'error',
      'prefer-const': 'error',
      'no-throw-literal': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'ImportDeclaration[source.value=/^(assert|buffer|child_process|crypto|events|fs|http|https|net|os|path|stream|url|util|zlib)(\\u002F.*)?$/]',
          message: "Import Node's built-in modules with the node: prefix.",
        },
      ],
      'no-console': 'off',
    },
  },
  {
    // The domain: pure, testable without any host or SDK, and it never logs on its own.
    files: ['shared/contracts/**/*.ts', 'shared/metering/**/*.ts', 'shared/chargeback/**/*.ts'],
    rules: { 'no-restricted-imports': layering(), 'no-console': 'error' },
  },
  {
    // Contracts are the bottom layer: they import nothing of the app but other contracts.
    files: ['shared/contracts/**/*.ts'],
    rules: { 'no-restricted-imports': layering(['**/metering/*', '**/chargeback/*']) },
  },
  {
    // Functions and activities log through their invocation context.
    files: ['functions/**/*.ts'],
    rules: { 'no-console': 'error' },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: globals.node,
      sourceType: 'commonjs',
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module' },
  },
  {
    // jest's asymmetric matchers (expect.any, expect.stringMatching) are typed `any`.
    files: ['tests/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  prettier,
);
