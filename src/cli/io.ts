import type { DestinationStream } from 'pino'
import { pino } from 'pino'
import { ConfigError, loadConfig } from '../gateway/config/load.js'
import type { GatewayConfig } from '../gateway/config/schema.js'

/** Where a command writes, and what it reads from its environment. */
export interface CliIo {
  out(text: string): void
  err(text: string): void
  env: Record<string, string | undefined>
  cwd: string
  /** Where `sluice serve` writes its JSON log lines (default: stderr). */
  logDestination?: DestinationStream
}

/** Thrown for a usage mistake: printed with a hint, exit code 2. */
export class UsageError extends Error {}

type StreamName = 'stdout' | 'stderr'

/**
 * The process's stdout and stderr, kept usable when their reader goes away (`sluice serve | head
 * -1`): a stream that fails (EPIPE) is no longer written to, what went to it goes to the other
 * one (logs and messages; the banner and results of stdout are dropped), and the process goes on.
 */
export function processIo(): CliIo {
  const open: Record<StreamName, boolean> = { stdout: true, stderr: true }
  // Log lines go through an asynchronous writer (pino's), as the gateway's own logger does.
  const logs = pino.destination({ dest: 2, sync: false })
  const closed = (name: StreamName, error: unknown) => {
    if (!open[name]) return
    open[name] = false
    const other: StreamName = name === 'stdout' ? 'stderr' : 'stdout'
    if (!open[other]) return
    const code = (error as NodeJS.ErrnoException | undefined)?.code ?? String(error)
    process[other].write(
      `sluice: ${name} is closed (${code}); ${name === 'stderr' ? 'logs and messages go to stdout' : 'its lines are dropped'} from now on\n`,
    )
  }
  process.stdout.on('error', (error) => closed('stdout', error))
  process.stderr.on('error', (error) => closed('stderr', error))
  logs.on('error', (error: unknown) => closed('stderr', error))

  const logDestination: DestinationStream & { flush(cb?: (error?: Error) => void): void } = {
    write(line: string) {
      if (open.stderr) logs.write(line)
      else if (open.stdout) process.stdout.write(line)
    },
    flush(cb?: (error?: Error) => void) {
      if (!open.stderr) return cb?.()
      try {
        logs.flush(cb)
      } catch (error) {
        cb?.(error as Error)
      }
    },
  }
  return {
    out: (text) => {
      if (open.stdout) process.stdout.write(`${text}\n`)
    },
    err: (text) => {
      if (open.stderr) process.stderr.write(`${text}\n`)
      else if (open.stdout) process.stdout.write(`${text}\n`)
    },
    env: process.env,
    cwd: process.cwd(),
    logDestination,
  }
}

/** The config a command runs with: --config, else $SLUICE_CONFIG, else ./sluice.yaml, else defaults. */
export function configFrom(
  path: string | undefined,
  io: CliIo,
): { config: GatewayConfig; path: string | undefined } {
  const options: { path?: string; env: CliIo['env']; cwd: string } = { env: io.env, cwd: io.cwd }
  if (path !== undefined) options.path = path
  return loadConfig(options)
}

export { ConfigError }
