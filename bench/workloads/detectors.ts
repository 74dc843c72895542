/**
 * What the abuse detectors cost the gateway: the same gateway with the detectors on and off
 * (bench/harness/detector-gateway.ts: one key, varied prompts, every detector on, a spend floor no
 * call reaches — the rows measure the observing, not the refusing), on a MemoryStore and on Redis.
 *
 * Both gateways run side by side (bench/harness/side-by-side.ts), in processes of their own in
 * front of one mock upstream, each with a redis-server of its own on Redis: after one warm-up
 * together, each round drives both for the same interval at the same time, 16 in flight each, so
 * that what the machine does in a round falls on both alike. Per round the row takes the on ÷ off
 * ratio of the calls each completed in that interval (req/s) and of the CPU a call cost the
 * gateway process and, on Redis, its redis-server and the two together: where the cores are the
 * limit, req/s goes as the inverse of that sum (the mock and the load generator cost the same
 * either way). The row's ratio and the note's are medians of those per-round ratios. (Turns run
 * one after another, as this row once ran, swung 0.73×–1.95× between runs of the same code.)
 */
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { loadStartGateway } from '../adapters.js'
import { ensureBuilt } from '../harness/built.js'
import type { Worker } from '../harness/child.js'
import {
  chatRequest,
  DETECTOR_IN_FLIGHT,
  startDetectorGateway,
  startDetectorMock,
} from '../harness/detector-gateway.js'
import { type DriveResult, drive, type Operation } from '../harness/drive.js'
import { LatencySamples, median, percentiles } from '../harness/latency.js'
import { formatRate, progress } from '../harness/progress.js'
import { type BenchRedis, startBenchRedis } from '../harness/redis.js'
import { allowedNote, throughputRow } from '../harness/rows.js'
import { ratiosText, roundRatios, together } from '../harness/side-by-side.js'
import type { BenchContext, Measure, Section, ThroughputRow, Workload } from '../harness/types.js'

/** Rounds at the least (but with --quick): a median of paired rounds, each a few seconds. */
const MIN_ROUNDS = 7
/**
 * Calls each gateway serves before the first round, whatever the run's warm-up says: a fresh
 * gateway keeps compiling its code for its first thousands of calls (on a loaded machine a quick
 * run's second of warm-up left calls at ~0.7 s each).
 */
const MIN_WARMUP_CALLS = 2000

interface Side {
  name: string
  worker: Worker
  redis: BenchRedis | undefined
  pool: Pool
  op: Operation
  rates: number[]
  /** CPU µs per call, each round: the gateway process's and its redis-server's. */
  cpuUs: number[]
  redisUs: number[]
  latencies: LatencySamples
  ops: number
  allowed: number
}

/** A side's calls: the n-th of its own sequence (both sides send the same prompts). */
function chatOp(pool: Pool): Operation {
  let n = 0
  return async () => {
    const res = await pool.request(chatRequest(n++))
    await res.body.text()
    return res.statusCode === 200
  }
}

async function run(ctx: BenchContext): Promise<Section> {
  const gateway = await loadStartGateway()
  if (!gateway.ok)
    return { unavailable: [{ id: 'detectors', workload: 'gateway detectors', reason: gateway.reason }] }
  // The mock and the gateways run sluice's built output (dist/), as `npm start` does.
  const sluice = ensureBuilt(fileURLToPath(new URL('../..', import.meta.url)))
  const rows: ThroughputRow[] = []
  for (const store of ['memory', 'redis'] as const) rows.push(await sideBySide(ctx, sluice, store))
  return { rows }
}

/** The on and off gateways of one store, side by side: the row. */
async function sideBySide(
  ctx: BenchContext,
  sluice: string,
  store: 'memory' | 'redis',
): Promise<ThroughputRow> {
  const id = `detectors-${store}`
  const { options } = ctx
  const rounds = options.quick ? options.rounds : Math.max(options.rounds, MIN_ROUNDS)
  // One redis-server per side, so that each side's share of Redis's CPU can be told apart.
  const servers = store === 'redis' ? await Promise.all([startBenchRedis(), startBenchRedis()]) : []
  const mock = await startDetectorMock(sluice)
  const sides: Side[] = []
  try {
    for (const on of [true, false]) {
      const redis = servers[sides.length]
      const worker = await startDetectorGateway({
        sluice,
        upstreamUrl: mock.info.url as string,
        on,
        redisUrl: redis?.url,
      })
      const pool = new Pool(worker.info.url as string, { connections: DETECTOR_IN_FLIGHT, pipelining: 1 })
      const name = `gateway, ${store === 'memory' ? 'MemoryStore' : 'RedisStore'}, detectors ${on ? 'on' : 'off'}`
      sides.push({
        name,
        worker,
        redis,
        pool,
        op: chatOp(pool),
        rates: [],
        cpuUs: [],
        redisUs: [],
        latencies: new LatencySamples(),
        ops: 0,
        allowed: 0,
      })
    }
    /** Both sides driven at the same time, `first`'s calls started first. */
    const both = (first: Side[], durationMs: number) =>
      together(first, (s) =>
        drive(s.op, { inFlight: DETECTOR_IN_FLIGHT, keys: 1, sampleEvery: 1, durationMs }),
      )
    // Warm-up together, for the run's server warm-up and at least MIN_WARMUP_CALLS calls each.
    const warmupStart = performance.now()
    const warmed = sides.map(() => 0)
    while (
      performance.now() - warmupStart < options.serverWarmupMs ||
      Math.min(...warmed) < MIN_WARMUP_CALLS
    ) {
      for (const [i, t] of (await both(sides, 1000)).entries()) warmed[i]! += t.result.ended
      progress(`${id}: both gateways warming up together, ${warmed.join(' and ')} calls so far`)
    }
    for (let round = 1; round <= rounds; round++) {
      // Which side's calls start first turns round every round.
      const order = round % 2 === 1 ? sides : [...sides].reverse()
      const turns = await both(order, options.durationMs)
      for (const [i, t] of turns.entries()) add(order[i]!, t.result, t.serverUs, t.redisUs)
      const [on, off] = sides as [Side, Side]
      const last = (xs: number[]) => xs.at(-1)!
      progress(
        `${id} · round ${round}/${rounds}: on ${formatRate(last(on.rates))}, off ${formatRate(last(off.rates))} req/s ` +
          `(${(last(on.rates) / last(off.rates)).toFixed(3)}×); gateway CPU ${last(on.cpuUs).toFixed(0)} vs ` +
          `${last(off.cpuUs).toFixed(0)} µs/call` +
          (store === 'redis'
            ? `, redis-server ${last(on.redisUs).toFixed(0)} vs ${last(off.redisUs).toFixed(0)} µs/call`
            : ''),
      )
    }
  } finally {
    for (const s of sides) {
      await s.pool.close()
      await s.worker.stop()
    }
    await mock.stop()
    for (const r of servers) await r.stop()
  }
  const [on, off] = sides.map((s) => measureOf(s, store === 'redis')) as [Measure, Measure]
  return throughputRow(
    id,
    `gateway → mock, detectors on vs off side by side (${store}), ${DETECTOR_IN_FLIGHT} in flight each`,
    [on],
    {
      unit: 'requests/s',
      baseline: off,
      note: [
        pairNote(sides[0]!, sides[1]!, store === 'redis', rounds, options.durationMs),
        allowedNote([on, off], 'all'),
      ]
        .filter((n) => n !== undefined)
        .join('; '),
    },
  )
}

/** One round of a side: its req/s and its CPU per call (every call it sent, the late ones too). */
function add(s: Side, r: DriveResult, serverUs: number, redisUs: number): void {
  s.rates.push((r.ops * 1000) / r.elapsedMs)
  s.cpuUs.push(serverUs / r.ended)
  s.redisUs.push(redisUs / r.ended)
  s.latencies.addAll(r.latencies.toArray())
  s.ops += r.ops
  s.allowed += r.allowed
}

function measureOf(s: Side, redis: boolean): Measure {
  return {
    name: s.name,
    opsPerSec: median(s.rates),
    roundsOpsPerSec: s.rates,
    ...percentiles(s.latencies),
    allowedShare: s.ops === 0 ? Number.NaN : s.allowed / s.ops,
    extra: {
      serverCpuUsPerReq: median(s.cpuUs),
      ...(redis && { redisCpuUsPerOp: median(s.redisUs) }),
    },
  }
}

/**
 * On ÷ off per round (req/s; CPU per call: gateway, and on Redis redis-server and the sum), each
 * with its median, and the CPU µs per call behind them (medians of rounds).
 */
function pairNote(on: Side, off: Side, redis: boolean, rounds: number, durationMs: number): string {
  const sum = (s: Side) => s.cpuUs.map((x, i) => x + s.redisUs[i]!)
  const cpu = (what: string, a: number[], b: number[]) =>
    `${what} ${median(a).toFixed(0)} vs ${median(b).toFixed(0)} µs: ${ratiosText(roundRatios(a, b))}`
  const parts = [
    `side by side, ${rounds} round(s) of ${durationMs / 1000} s; on ÷ off per round, req/s: ${ratiosText(roundRatios(on.rates, off.rates))}`,
    `CPU per call, ${cpu('gateway', on.cpuUs, off.cpuUs)}`,
  ]
  if (redis) {
    parts.push(cpu('redis-server', on.redisUs, off.redisUs), cpu('gateway + redis-server', sum(on), sum(off)))
  }
  return parts.join('; ')
}

export const detectorsOverhead: Workload = {
  id: 'detectors',
  title: 'gateway req/s with the abuse detectors on vs off side by side, memory and Redis, 16 in flight each',
  needsRedis: true,
  run,
}
