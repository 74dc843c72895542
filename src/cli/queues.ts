/** `sluice queues`: who waits in the tiers' queues now, read from the shared store (docs/queueing.md). */
import { escapeControls, formatMs } from '../gateway/format.js'
import { type CliIo, configFrom } from './io.js'
import { sharedState } from './state.js'

export async function queuesCommand(values: Record<string, unknown>, io: CliIo): Promise<number> {
  const { config } = configFrom(values.config as string | undefined, io)
  const state = await sharedState(config)
  try {
    const report = await state.sluice.queues()
    if (values.json) {
      io.out(JSON.stringify(report, null, 2))
      return 0
    }
    if (!report.shared) {
      io.out('the store is in memory: queues live in each gateway process (see GET /admin/v1/queues on one)')
    }
    for (const t of report.tiers) {
      const settings = t.queue === null ? 'no queue' : `waits up to ${formatMs(t.queue.maxWaitMs)}`
      const oldest = t.oldestWaitMs === null ? '' : `, oldest waiting ${formatMs(t.oldestWaitMs)}`
      io.out(escapeControls(`${t.tier} (${settings}): ${t.waiting} waiting${oldest}`))
      for (const c of t.capacities) {
        io.out(
          escapeControls(`  ${c.subject}: ${c.waiting} waiting, oldest ${formatMs(c.oldestWaitMs ?? 0)}`),
        )
      }
    }
    return 0
  } finally {
    await state.close()
  }
}
