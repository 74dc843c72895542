/**
 * What a queue nobody waits in costs Redis, counted rather than timed (a loaded machine makes
 * timings noise): Redis commands and script calls per decision, from `INFO commandstats` after
 * `CONFIG RESETSTAT`, for the same limit consumed without a queue and with `{ maxWaitMs }`.
 *
 *   npx tsx bench/queue-commands.ts redis://127.0.0.1:6379     (use a Redis nothing else uses)
 */
import { Redis } from 'ioredis'
import { Limiter, tokenBucket } from '../src/index.js'
import { RedisStore } from '../src/store/redis/store.js'

const url = process.argv[2] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const DECISIONS = 20_000
const admin = new Redis(url)
const store = new RedisStore({ url })
// A bucket that never refuses: the uncontended path only.
const limiter = new Limiter({
  store,
  policy: 'queue-commands',
  limits: { burst: tokenBucket({ capacity: 1e9, refillPerSecond: 1e9 }) },
})

async function perDecision(options: { maxWaitMs: number } | undefined, inFlight: number) {
  await admin.config('RESETSTAT')
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < DECISIONS) {
        const i = next++
        await limiter.consume(`s${i % 1000}`, { requests: 1 }, options)
      }
    }),
  )
  const out: Record<string, number> = {}
  let usec = 0
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line)
    if (m === null || m[1]!.startsWith('config') || m[1] === 'info') continue
    out[m[1]!] = Number(m[2]) / DECISIONS
    // A script's time includes the commands it calls (which are counted too): scripts only.
    if (/^(fcall|evalsha|eval)$/.test(m[1]!)) usec += Number(m[3])
  }
  // Redis's own CPU time in the script calls, per decision.
  out['µs of Redis CPU'] = usec / DECISIONS
  return out
}

await limiter.consume('warm-up', { requests: 1 })
for (const inFlight of [1, 256]) {
  for (const [label, options] of [
    ['without a queue', undefined],
    ['with { maxWaitMs: 1000 }', { maxWaitMs: 1000 }],
  ] as const) {
    const counts = await perDecision(options, inFlight)
    const shown = Object.entries(counts).map(([c, n]) => `${c} ${n.toFixed(3)}`)
    console.log(
      `${String(inFlight).padStart(3)} in flight, ${label.padEnd(24)} per decision: ${shown.join(', ')}`,
    )
  }
}
await store.close()
admin.disconnect()
