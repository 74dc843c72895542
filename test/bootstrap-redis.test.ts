// With redis-server installed, `npm test` checks it and runs the selected tests that need it.
// (scripts/test-services/services.ts lists this file as needing redis.)
import { expect, it } from 'vitest'
import { runTestScript } from './bootstrap-helpers.js'

it('with redis-server and redis-cli on PATH, the tests that start their own Redis run', async () => {
  const run = await runTestScript(['test/redis-store.test.ts'], { SLUICE_TEST_NO_INSTALL: '1' })
  expect(run.stderr).not.toContain('✗')
  expect(run.stdout).toMatch(
    /^✓ redis: redis-server \S+ and redis-cli on PATH \(the tests start their own\)$/m,
  )
  expect(run.stdout).toMatch(/Test Files\s+1 passed \(1\)/)
  expect(run.code).toBe(0)
})
