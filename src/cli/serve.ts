/** `sluice serve`: the gateway in the foreground, its banner, and a shutdown that always ends. */
import { resolve } from 'node:path'
import { bannerLines } from '../gateway/banner.js'
import type { GatewayConfig } from '../gateway/config/schema.js'
import { formatDuration } from '../gateway/config/values.js'
import { startGateway } from '../gateway/index.js'
import { databaseUrlOf } from './control.js'
import { type CliIo, ConfigError, configFrom, UsageError } from './io.js'
import { describeStore } from './state.js'

/** Without shutdown.hardDeadline: this long after shutdown.deadline the process exits regardless. */
const HARD_DEADLINE_MARGIN_MS = 15_000
/** After a second signal: this long to settle what was cut and flush the ledger, then exit. */
const SECOND_SIGNAL_GRACE_MS = 10_000

/** The config as `sluice serve` runs it: flags over the file, the embedded defaults filled in. */
function serveConfig(values: Record<string, unknown>, io: CliIo): { config: GatewayConfig; path?: string } {
  const { config, path } = configFrom(values.config as string | undefined, io)
  if (values.port !== undefined) {
    const port = Number(values.port)
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new UsageError(`--port must be 0-65535, got ${values.port}`)
    config.port = port
  }
  if (values.host !== undefined) config.host = values.host as string
  // The embedded control database unless the config turns it off (database: false).
  const database = databaseUrlOf(config, io.cwd)
  if (database !== undefined) {
    config.database = {
      migrate: true,
      ledger: true,
      retention: 90 * 86_400_000,
      keyTtl: 10_000,
      budgetUtcOffset: 0,
      ...(config.database || {}),
      url: database,
    }
  }
  // The memory store's counts survive restarts unless the config turns that off (snapshot: false).
  if (config.snapshot === undefined && config.store.type === 'memory') {
    config.snapshot = { path: resolve(io.cwd, '.sluice/memory-store.json'), interval: 1000 }
  } else if (config.snapshot) {
    config.snapshot.path = resolve(io.cwd, config.snapshot.path)
  }
  return { config, ...(path !== undefined && { path }) }
}

export async function serve(values: Record<string, unknown>, io: CliIo): Promise<number> {
  const { config, path } = serveConfig(values, io)
  const gateway = await startGateway(config, {
    env: io.env,
    ...(io.logDestination !== undefined && { logDestination: io.logDestination }),
  })
  for (const line of bannerLines(gateway, { configPath: path, store: describeStore(config), env: io.env }))
    io.out(line)

  return await new Promise<number>((resolve) => {
    let signals = 0
    let exitAt = Number.POSITIVE_INFINITY
    let hardTimer: NodeJS.Timeout | undefined
    let done = false
    const finish = (code: number) => {
      if (done) return
      done = true
      clearTimeout(hardTimer)
      resolve(code)
    }
    /** Exits with 1 after `ms` unless the shutdown finished before (never later than set before). */
    const exitWithin = (ms: number) => {
      if (Date.now() + ms >= exitAt) return
      exitAt = Date.now() + ms
      clearTimeout(hardTimer)
      hardTimer = setTimeout(() => {
        io.err(`shutdown did not finish within ${formatDuration(ms)}: exiting without it`)
        finish(1)
      }, ms)
    }
    const stop = (signal: string) => {
      signals++
      if (signals === 1) {
        const hardMs = config.shutdown.hardDeadline ?? config.shutdown.deadline + HARD_DEADLINE_MARGIN_MS
        io.err(
          `${signal}: no new connections; ${gateway.inFlight} call(s) in flight may finish for up to ${formatDuration(config.shutdown.deadline)}, then they are cut and settled (the process exits within ${formatDuration(hardMs)} whatever happens; a second signal cuts at once)…`,
        )
        exitWithin(hardMs)
        gateway.close().then(
          () => {
            io.err('stopped: every call settled, ledger flushed')
            finish(0)
          },
          (error: unknown) => {
            io.err(`error while stopping: ${(error as Error).message}`)
            finish(1)
          },
        )
      } else if (signals === 2) {
        // Do not wait for the calls in flight (they are still settled).
        io.err(`${signal} again: cutting the calls in flight now (a third signal exits at once)`)
        exitWithin(SECOND_SIGNAL_GRACE_MS)
        void gateway.close({ deadlineMs: 0 })
      } else {
        io.err(`${signal} a third time: exiting now`)
        finish(1)
      }
    }
    process.on('SIGHUP', () => {
      if (signals > 0) return
      reload(values, io, gateway.reload).catch(() => {})
    })
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
  })
}

/**
 * SIGHUP: reads the config again (same file, environment and flags) and applies its tiers, keys,
 * models, prices and upstreams; calls in flight go on with what they started with. A config that
 * does not load or build is not applied: the old one keeps serving, and one line says why.
 */
async function reload(
  values: Record<string, unknown>,
  io: CliIo,
  apply: (load: () => GatewayConfig) => Promise<{ needsRestart: string[] }>,
): Promise<void> {
  try {
    const { needsRestart } = await apply(() => serveConfig(values, io).config)
    const note =
      needsRestart.length > 0 ? ` (${needsRestart.join(', ')} changed too: those need a restart)` : ''
    io.err(`SIGHUP: config reloaded: tiers, keys, models, prices and upstreams apply to new calls${note}`)
  } catch (error) {
    const issues = error instanceof ConfigError ? error.issues.join('; ') : (error as Error).message
    io.err(`SIGHUP: config not reloaded, the old one keeps serving: ${issues.split('\n').join(' ')}`)
  }
}
