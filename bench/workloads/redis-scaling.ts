import { Worker } from '../harness/child.js'
import { describeMeasure } from '../harness/contest.js'
import { LatencySamples, median, percentiles } from '../harness/latency.js'
import { progress } from '../harness/progress.js'
import { pairedRatio } from '../harness/rows.js'
import type { BenchContext, Measure, ScalingRow, Workload } from '../harness/types.js'

const PROCESS_COUNTS = [1, 2, 4]
const WORKER = new URL('../workers/redis-client.ts', import.meta.url)
const NAMES = { sluice: 'sluice RedisStore', peer: 'RateLimiterRedis' } as const

/** One turn: n client processes, all warmed up, then all measured over the same period. */
async function turn(
  ctx: BenchContext,
  url: string,
  contender: 'sluice' | 'peer',
  processes: number,
  label: string,
) {
  const { options } = ctx
  const workers = await Promise.all(
    Array.from({ length: processes }, () =>
      Worker.start(WORKER, { url, contender, inFlight: options.inFlight, keys: options.keys }),
    ),
  )
  try {
    progress(`${label}: warm-up ${options.warmupMs} ms`)
    await Promise.all(
      workers.map((w) => w.request({ type: 'run', phase: 'warmup', durationMs: options.warmupMs })),
    )
    progress(`${label}: measuring ${options.durationMs} ms`)
    const answers = await Promise.all(
      workers.map((w) => w.request({ type: 'run', phase: 'measure', durationMs: options.durationMs })),
    )
    let rate = 0
    const latencies = new LatencySamples()
    for (const a of answers) {
      if (a.type !== 'done') throw new Error(`unexpected worker answer ${a.type}`)
      rate += (a.ops * 1000) / a.elapsedMs
      latencies.addAll(a.latencies)
    }
    return { rate, latencies }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
}

async function run(ctx: BenchContext) {
  const redis = await ctx.redis()
  const rows: ScalingRow[] = []
  for (const processes of PROCESS_COUNTS) {
    const acc = {
      sluice: { rates: [] as number[], latencies: new LatencySamples() },
      peer: { rates: [] as number[], latencies: new LatencySamples() },
    }
    for (let round = 0; round < ctx.options.rounds; round++) {
      const order: ('sluice' | 'peer')[] = round % 2 === 0 ? ['sluice', 'peer'] : ['peer', 'sluice']
      for (const contender of order) {
        await redis.flush()
        const label = `redis-scaling · ${processes} process(es) · ${NAMES[contender]} · round ${round + 1}/${ctx.options.rounds}`
        const r = await turn(ctx, redis.url, contender, processes, label)
        acc[contender].rates.push(r.rate)
        acc[contender].latencies.addAll(r.latencies.toArray())
        progress(`${label}: ${describeMeasure({ opsPerSec: r.rate, ...percentiles(r.latencies) })}`)
      }
    }
    const measure = (c: 'sluice' | 'peer'): Measure => ({
      name: NAMES[c],
      opsPerSec: median(acc[c].rates),
      roundsOpsPerSec: acc[c].rates,
      ...percentiles(acc[c].latencies),
    })
    const sluice = measure('sluice')
    const peer = measure('peer')
    rows.push({ processes, sluice, peer, ratio: pairedRatio(sluice, peer) })
  }
  return { scaling: rows }
}

export const redisScaling: Workload = {
  id: 'redis-scaling',
  title: 'RedisStore decisions/s with 1, 2 and 4 client processes on one redis-server, vs RateLimiterRedis',
  needsRedis: true,
  run,
}
