import type { Redis } from 'ioredis'

/**
 * The commands Redis ran during `run`, by name, from INFO commandstats after CONFIG RESETSTAT
 * (the CONFIG and INFO calls themselves left out). Counts the commands scripts run too.
 */
export async function commandsOf(admin: Redis, run: () => Promise<unknown>): Promise<Record<string, number>> {
  await admin.config('RESETSTAT')
  await run()
  const out: Record<string, number> = {}
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (m !== null && !m[1]!.startsWith('config') && m[1] !== 'info') out[m[1]!] = Number(m[2])
  }
  return out
}
