// `npm test` brings up what the selected tests need, or stops before any test with one line per
// missing service. These cases need nothing but Node: the services are made missing by an empty
// PATH, and SLUICE_TEST_NO_INSTALL=1 stands for a user who may not install.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { allTestFiles, servicesNeeded } from '../scripts/test-services/needs.js'
import { nodeOnlyTestFiles, SERVICES } from '../scripts/test-services/services.js'
import { emptyDir, ROOT, runTestScript } from './bootstrap-helpers.js'

const NO_SERVICES = { PATH: emptyDir(), SLUICE_TEST_NO_INSTALL: '1' }
const INSTALL = (pkg: string) => `Run: ${process.getuid?.() === 0 ? '' : 'sudo '}apt-get install -y ${pkg}`

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-needs-'))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

describe('which tests need which service', () => {
  const needs = servicesNeeded(ROOT, allTestFiles(ROOT), SERVICES)

  it('a test that starts redis-server through the helpers needs redis, directly or through another module', () => {
    expect(needs.get('test/redis-store.test.ts')).toEqual(['redis'])
    expect(needs.get('test/cluster/contract.test.ts')).toEqual(['redis']) // via cluster/harness → redis-cluster
    expect(needs.get('test/gateway/limits.test.ts')).toEqual(['redis']) // via gateway/helpers → redis-server
  })

  it('pure tests need nothing; tests under test/control and test/dashboard need postgres and chromium', () => {
    expect(needs.get('test/core/gcra.test.ts')).toEqual([])
    expect(needs.get('test/bootstrap.test.ts')).toEqual([])
    const future = servicesNeeded(ROOT, ['test/control/keys.test.ts', 'test/dashboard/ui.test.ts'], SERVICES)
    expect([...future.values()]).toEqual([['postgres'], ['chromium']])
  })

  it('reads imports of every form, follows them through test modules, and ignores `import type`', () => {
    const root = tree({
      'test/helpers/db.ts': 'export const db = 1\n',
      'test/helpers/wrap.ts': "export { db } from './db.js'\n",
      'test/multi-line.test.ts': "import {\n  a,\n  db,\n} from './helpers/wrap.js'\n",
      'test/dynamic.test.ts': "const m = await import('./helpers/db.js')\n",
      'test/side-effect.test.ts': "import './helpers/db.js'\n",
      'test/types-only.test.ts': "import type { db } from './helpers/db.js'\n",
      'test/plain.test.ts': "import { x } from 'vitest'\n",
    })
    const found = servicesNeeded(root, allTestFiles(root), [
      { name: 'db', neededBy: { helpers: ['test/helpers/db.ts'] } },
    ])
    expect(Object.fromEntries(found)).toEqual({
      'test/dynamic.test.ts': ['db'],
      'test/multi-line.test.ts': ['db'],
      'test/plain.test.ts': [],
      'test/side-effect.test.ts': ['db'],
      'test/types-only.test.ts': [],
    })
  })

  it('npm run test:unit runs exactly the test files that need no service', () => {
    const unit = nodeOnlyTestFiles(ROOT)
    expect(unit).toContain('test/core/gcra.test.ts')
    expect(unit).toContain('test/bootstrap.test.ts')
    for (const [file, names] of needs) expect(unit.includes(file)).toBe(names.length === 0)
  })
})

describe('npm test on a machine without the services, by a user who may not install', () => {
  it('stops before any test with one line naming the command to run', async () => {
    const run = await runTestScript(['test/redis-store.test.ts'], NO_SERVICES)
    expect(run.code).toBe(1)
    const lines = run.stderr.trim().split('\n')
    expect(lines).toEqual([
      `✗ redis, needed by 1 of the 1 selected test files: redis-server and redis-cli are not on PATH. ${INSTALL('redis-server')}`,
      'No test was run. Fix the line above; the tests that need only Node run with: npm run test:unit',
    ])
    expect(run.stdout).toBe('') // vitest never started
  })

  it('runs the selected tests that need nothing, checking nothing', async () => {
    const run = await runTestScript(['test/core/gcra.test.ts'], NO_SERVICES)
    expect(run.stderr).not.toContain('✗')
    expect(run.stdout).toMatch(/Test Files\s+1 passed/)
    expect(run.code).toBe(0)
  })

  it('--unit leaves out the tests that need a service', async () => {
    const run = await runTestScript(['--unit', 'test/redis-store.test.ts', '--passWithNoTests'], NO_SERVICES)
    expect(run.stderr).not.toContain('✗')
    expect(run.stdout).toContain('No test files found')
    expect(run.code).toBe(0)
  })

  it('names the package of each missing service, one line each', async () => {
    const run = await runTestScript(['--check', 'redis', 'postgres', 'chromium'], NO_SERVICES)
    expect(run.code).toBe(1)
    expect(run.stderr.trim().split('\n')).toEqual([
      `✗ redis: redis-server and redis-cli are not on PATH. ${INSTALL('redis-server')}`,
      `✗ postgres: PostgreSQL is not installed (psql not on PATH). ${INSTALL('postgresql')}`,
      `✗ chromium: chromium is not on PATH. ${INSTALL('chromium')}`,
    ])
  })

  it('says what is wrong with a bad SLUICE_TEST_PG_URL or SLUICE_TEST_CHROMIUM, never printing a password', async () => {
    const run = await runTestScript(['--check', 'postgres', 'chromium'], {
      ...NO_SERVICES,
      SLUICE_TEST_PG_URL: 'mysql://admin:hunter2@db.example:3306/app',
      SLUICE_TEST_CHROMIUM: '/nowhere/chromium',
    })
    expect(run.code).toBe(1)
    expect(run.stderr.trim().split('\n')).toEqual([
      '✗ postgres: SLUICE_TEST_PG_URL must start with postgres:// (it starts with mysql://). To fix: set it to postgres://user@host:port/database',
      '✗ chromium: SLUICE_TEST_CHROMIUM=/nowhere/chromium is not an executable file. To fix: point it at a Chromium binary, or unset it to use `command -v chromium`',
    ])
    expect(run.stdout + run.stderr).not.toContain('hunter2')
  })
})
