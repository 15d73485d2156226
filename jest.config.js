/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  // Type errors are `npm run typecheck`'s job: with isolatedModules (tsconfig) ts-jest only transpiles.
  transform: { '^.+\\.ts$': 'ts-jest' },
  // The Functions Node worker injects this module at run time; the local host provides it.
  moduleNameMapper: { '^@azure/functions-core$': '<rootDir>/local/host/functions-core.ts' },
  testTimeout: 30000,
  maxWorkers: 2,
};
