import { defineConfig } from 'vitest/config'
import { nodeOnlyTestFiles } from './scripts/test-services/services.js'

// SLUICE_TEST_SET=unit (`npm run test:unit`): only the test files that need no service, as the
// table in scripts/test-services/services.ts says.
const set = process.env.SLUICE_TEST_SET
if (set !== undefined && set !== '' && set !== 'unit') {
  throw new Error(`SLUICE_TEST_SET must be "unit" or unset, not ${JSON.stringify(set)}`)
}

export default defineConfig({
  test: {
    include: set === 'unit' ? nodeOnlyTestFiles(import.meta.dirname) : ['test/**/*.test.ts'],
    // Tests start real redis-server processes and child Node processes; forks keep them isolated.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
