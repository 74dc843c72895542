// Brings up the services the selected tests need, one after the other: a service that is ready is
// reported in one line; one that is stopped is started; one that is missing is installed when this
// process may (root, or sudo without a password); otherwise one line says what is wrong and the
// exact command that fixes it.
import { aptInstall, installCommand, lastLine } from './apt.js'
import type { Service } from './services.js'
import { asRoot, firstLine, forPerson, type Privilege, privilege, run, which } from './system.js'

export interface Need {
  service: Service
  /** How many of the selected test files need it (for the messages). */
  files: number
}

export interface BootstrapOptions {
  /** The environment the tests will run with (PATH, REDIS_URL, SLUICE_TEST_*). */
  env: NodeJS.ProcessEnv
  /** false: never install anything, print the command instead (SLUICE_TEST_NO_INSTALL=1). */
  install: boolean
  /** How many test files are selected in all (for the messages). */
  selected: number
  log(line: string): void
  fail(line: string): void
}

export interface BootstrapResult {
  ok: boolean
  /** What the tests are told about the services (SLUICE_TEST_PG_URL, SLUICE_TEST_CHROMIUM). */
  env: Record<string, string>
}

export async function bringUp(needs: readonly Need[], options: BootstrapOptions): Promise<BootstrapResult> {
  let how: Promise<Privilege> | undefined
  const rights = () => {
    how ??= privilege(options.env)
    return how
  }
  const env: Record<string, string> = {}
  let ok = true
  for (const need of needs) {
    const result = await bringUpOne(need, options, rights)
    if (typeof result === 'string') {
      ok = false
      const why =
        need.files > 0 ? `, needed by ${need.files} of the ${options.selected} selected test files` : ''
      options.fail(`✗ ${need.service.name}${why}: ${result}`)
    } else Object.assign(env, result)
  }
  return { ok, env }
}

async function bringUpOne(
  { service }: Need,
  options: BootstrapOptions,
  rights: () => Promise<Privilege>,
): Promise<Record<string, string> | string> {
  const { env, log } = options
  let installed = false
  let started = false
  for (;;) {
    const probe = await service.probe(env)
    if (probe.state === 'ready') {
      log(`✓ ${service.name}: ${probe.summary}`)
      return probe.env ?? {}
    }
    if (probe.state === 'unusable') return `${probe.problem}. To fix: ${probe.fix}`
    if (probe.state === 'missing') {
      const command = installCommand(service.packages)
      if (installed) return `${probe.problem}, even after ${command.join(' ')}`
      const how = options.install && which('apt-get', env) ? await rights() : 'none'
      if (how === 'none') return `${probe.problem}. Run: ${forPerson(command)}`
      log(`${service.name}: ${probe.problem}; installing: ${asRoot(command, how).join(' ')}`)
      const outcome = await aptInstall(service.packages, how, env, log)
      if (outcome.code !== 0) {
        return `${command.join(' ')} failed: ${outcome.failure ?? lastLine(outcome)}. Run it to see why: ${forPerson(command)}`
      }
      installed = true
      const problem = await service.afterInstall?.(env, how, log)
      if (problem) return problem
      continue
    }
    // stopped
    if (started) return `${probe.problem}, even after ${probe.start.join(' ')}`
    let argv: string[] | undefined
    if (probe.ownerUid !== undefined && probe.ownerUid === process.getuid?.()) argv = probe.start
    else {
      const how = await rights()
      if (how !== 'none') argv = asRoot(probe.start, how)
    }
    if (!argv) return `${probe.problem}. Run: ${forPerson(probe.start)}`
    log(`${service.name}: ${probe.problem}; starting it: ${argv.join(' ')}`)
    const outcome = await run(argv, { env, timeoutMs: 120_000 })
    if (outcome.code !== 0) {
      return `${probe.problem} and ${argv.join(' ')} failed: ${firstLine(outcome)}. Run: ${forPerson(probe.start)}`
    }
    started = true
  }
}
