// `npm test [-- vitest arguments]`: finds the test files vitest would run with these arguments,
// brings up the services those files need (scripts/test-services/services.ts), then runs vitest
// with the same arguments. Nothing is run when a service is missing and cannot be installed.
//
//   npm test                          the whole suite
//   npm test -- test/core             only these files (they need no service, so none is checked)
//   npm run test:unit                 only the files that need nothing but Node (--unit)
//   tsx scripts/test.ts --check redis postgres chromium
//                                     bring up the named services, run no test
//
// SLUICE_TEST_NO_INSTALL=1 never installs (prints the command instead).
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { constants } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bringUp, type Need } from './test-services/bootstrap.js'
import { servicesNeeded } from './test-services/needs.js'
import { SERVICES } from './test-services/services.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const UNIT_HINT = 'the tests that need only Node run with: npm run test:unit'

async function main(argv: string[]): Promise<number> {
  let args = argv
  if (args[0] === '--unit') {
    // Read by vitest.config.ts (here, when listing the files, and in vitest itself).
    process.env.SLUICE_TEST_SET = 'unit'
    args = args.slice(1)
  }
  if (args[0] === '--check') return check(args.slice(1))

  const files = await selectedTestFiles(args)
  if (files === undefined) return runVitest(args, {}) // vitest reports what is wrong with the arguments
  const needs = servicesNeeded(root, files, SERVICES)
  const wanted: Need[] = SERVICES.map((service) => ({
    service,
    files: [...needs.values()].filter((names) => names.includes(service.name)).length,
  })).filter((need) => need.files > 0)
  if (wanted.length === 0) return runVitest(args, {})
  const result = await bringUp(wanted, bootstrapOptions(files.length))
  if (!result.ok) {
    console.error(`No test was run. Fix the line${wanted.length > 1 ? 's' : ''} above; ${UNIT_HINT}`)
    return 1
  }
  return runVitest(args, result.env)
}

function bootstrapOptions(selected: number) {
  return {
    env: process.env,
    install: process.env.SLUICE_TEST_NO_INSTALL !== '1',
    selected,
    log: (line: string) => console.log(line),
    fail: (line: string) => console.error(line),
  }
}

async function check(names: string[]): Promise<number> {
  const unknown = names.filter((name) => !SERVICES.some((s) => s.name === name))
  if (names.length === 0 || unknown.length > 0) {
    console.error(`--check takes service names among: ${SERVICES.map((s) => s.name).join(', ')}`)
    return 2
  }
  const wanted = SERVICES.filter((s) => names.includes(s.name)).map((service) => ({ service, files: 0 }))
  const result = await bringUp(wanted, bootstrapOptions(0))
  for (const [name, value] of Object.entries(result.env)) console.log(`${name}=${value}`)
  return result.ok ? 0 : 1
}

/**
 * The test files vitest would run with `args` (its own CLI parser and file globbing, so filters,
 * --project, --dir and --config mean what they mean to vitest), or undefined when vitest would
 * not run them (bad arguments, --help).
 */
async function selectedTestFiles(args: string[]): Promise<string[] | undefined> {
  if (args.some((a) => a === '-h' || a === '--help' || a === '-v' || a === '--version')) return undefined
  const { createVitest, parseCLI } = await import('vitest/node')
  let vitest: Awaited<ReturnType<typeof createVitest>> | undefined
  try {
    const { filter, options } = parseCLI(['vitest', 'run', ...args])
    const { config, root: dir, dir: testDir, project } = options
    vitest = await createVitest('test', { config, root: dir, dir: testDir, project, watch: false })
    const specs = await vitest.globTestSpecifications(filter)
    return [...new Set(specs.map((spec) => spec.moduleId))]
  } catch {
    return undefined
  } finally {
    await vitest?.close()
  }
}

function runVitest(args: string[], env: Record<string, string>): Promise<number> {
  const bin = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs')
  const child = spawn(process.execPath, [bin, 'run', ...args], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  })
  // Ctrl-C reaches vitest through the terminal; this process waits for it to finish and exits
  // with its code. A TERM sent to this process alone is passed on.
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => child.kill('SIGTERM'))
  return new Promise((resolve) => {
    child.once('error', (error) => {
      console.error(`could not start vitest: ${error.message}`)
      resolve(1)
    })
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)))
  })
}

process.exit(await main(process.argv.slice(2)))
