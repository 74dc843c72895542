// Runs `npm test`'s script (scripts/test.ts) as a child process, with the environment a test gives.
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSX = join(ROOT, 'node_modules/tsx/dist/cli.mjs')

export interface ScriptRun {
  code: number | null
  stdout: string
  stderr: string
}

/** A directory with nothing in it: as PATH, a machine where no service's program is installed. */
export function emptyDir(): string {
  return mkdtempSync(join(tmpdir(), 'sluice-empty-path-'))
}

export function runTestScript(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ScriptRun> {
  // Leave out the variables of the vitest running this test and those `npm test` set for it
  // (SLUICE_TEST_SET, SLUICE_TEST_CHROMIUM…), so that the inner run starts afresh from `env`.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(_*VITEST|SLUICE_TEST_)/.test(name)),
  )
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSX, 'scripts/test.ts', ...args], {
      cwd: ROOT,
      env: { ...inherited, NO_COLOR: '1', FORCE_COLOR: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** `{ [name]: value }` of the variables of this process that are set, to pass them on. */
export function passOn(...names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])))
}

/** The value of `NAME=value` in the output of `scripts/test.ts --check`. */
export function exported(run: ScriptRun, name: string): string | undefined {
  return new RegExp(`^${name}=(.+)$`, 'm').exec(run.stdout)?.[1]
}
