// The machine as the test bootstrap sees it: programs on PATH, commands run with a deadline, and
// whether it may install packages (root, or sudo without a password).
import { spawn } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, isAbsolute, join } from 'node:path'

export interface Outcome {
  /** Exit code; null when the command could not start, timed out or died by a signal. */
  code: number | null
  stdout: string
  stderr: string
  /** Why the command did not run to an exit code (not found, deadline passed, signal). */
  failure?: string
}

const MAX_OUTPUT = 256 * 1024

/** Runs `argv` without a shell, killing it (and failing) when `timeoutMs` passes. */
export function run(
  argv: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs: number; input?: string },
): Promise<Outcome> {
  return new Promise((resolve) => {
    const [command, ...args] = argv
    const child = spawn(command!, args, {
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let failure: string | undefined
    // Keep the tail: the last lines of a failed command are the ones that say why.
    const keep = (text: string, chunk: Buffer) => (text + chunk.toString()).slice(-MAX_OUTPUT)
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout = keep(stdout, chunk)
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = keep(stderr, chunk)
    })
    if (options.input !== undefined) child.stdin?.end(options.input)
    const timer = setTimeout(() => {
      failure = `no answer within ${Math.round(options.timeoutMs / 1000)} s`
      child.kill('SIGKILL')
    }, options.timeoutMs)
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve({ code: null, stdout, stderr, failure: error.code === 'ENOENT' ? 'not found' : error.message })
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (signal && !failure) failure = `killed by ${signal}`
      resolve({ code: failure ? null : code, stdout, stderr, ...(failure ? { failure } : {}) })
    })
  })
}

/** The first line of a command's output that says something (for one-line messages). */
export function firstLine(outcome: Outcome): string {
  const lines = `${outcome.stderr}\n${outcome.stdout}`.split('\n').map((l) => l.trim())
  return lines.find((l) => l.length > 0) ?? outcome.failure ?? `exit code ${outcome.code}`
}

/** The absolute path `command -v name` would print, or undefined. */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (isAbsolute(name)) return isExecutable(name) ? name : undefined
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, name)
    if (isExecutable(candidate)) return candidate
  }
  return undefined
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** How this process may run commands as root: itself, through `sudo -n`, or not at all. */
export type Privilege = 'root' | 'sudo' | 'none'

export async function privilege(env: NodeJS.ProcessEnv): Promise<Privilege> {
  if (process.getuid?.() === 0) return 'root'
  if (!which('sudo', env)) return 'none'
  const probe = await run(['sudo', '-n', 'true'], { env, timeoutMs: 10_000 })
  return probe.code === 0 ? 'sudo' : 'none'
}

/** `argv` as a command to run as root with `privilege` (the caller checked it is not 'none'). */
export function asRoot(argv: readonly string[], how: Privilege): string[] {
  return how === 'sudo' ? ['sudo', '-n', ...argv] : [...argv]
}

/** What to tell a person to type to run `argv` as root. */
export function forPerson(argv: readonly string[]): string {
  return (process.getuid?.() === 0 ? argv : ['sudo', ...argv]).join(' ')
}
