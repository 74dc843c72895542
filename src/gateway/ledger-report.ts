/** The ledger's health in the log: one line per transition (failing, writing again, losing records). */
import type { Logger } from 'pino'
import type { GatewayConfig } from './config/schema.js'
import type { Ledger } from './ledger.js'

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MB` : `${Math.round(bytes / 1024)} KB`
}

/** One log line per ledger transition (failing, writing again, losing records), never one per call. */
export function reportLedger(ledger: Ledger, config: GatewayConfig, logger: Logger): void {
  const log = logger.child({ component: 'ledger' })
  const path = ledger.options.path
  const refuse = config.ledger.onFailure === 'refuse'
  let losing = false
  ledger.observe({
    failing: (error, buffered) => {
      log.error(
        { path, code: (error as NodeJS.ErrnoException).code, buffered },
        `usage ledger cannot write: ${error.message}. Records wait in memory (up to ${formatBytes(config.ledger.buffer)}) and calls are ${refuse ? 'refused with 503' : 'still served'} until it can (see /readyz)`,
      )
    },
    recovered: ({ downMs, written, dropped }) => {
      losing = false
      log.info(
        { path, downMs, written, dropped },
        `usage ledger writes again after ${downMs}ms: ${written} waiting records written${dropped > 0 ? `, ${dropped} lost while the buffer was full` : ''}`,
      )
    },
    dropped: () => {
      if (losing) return
      losing = true
      log.error(
        { path },
        'usage ledger is losing records: its buffer is full (or it closed before it could write them); they are counted in sluice_ledger_dropped_records_total',
      )
    },
    repaired: () => {
      log.warn(
        { path },
        'usage ledger: closed a torn last line left by an earlier write; sluice usage reports it as skipped',
      )
    },
  })
}
