import { type DriveResult, drive, type Operation } from './drive.js'
import { LatencySamples, median, percentiles } from './latency.js'
import { formatRate, progress } from './progress.js'
import type { BenchContext, Measure } from './types.js'

export interface Instance {
  op: Operation
  /** Right before the measured period (after the warm-up), e.g. to snapshot Redis counters. */
  beforeMeasure?(): Promise<void>
  /** Workload-specific figures for the measured period. */
  afterMeasure?(result: DriveResult): Promise<Record<string, number>>
  teardown(): Promise<void>
}

export interface Contender {
  name: string
  /** A fresh instance; called after `ContestSpec.reset`, so it starts from an empty store. */
  setup(): Promise<Instance>
}

export interface ContestSpec {
  id: string
  contenders: Contender[]
  /** Overrides of the run's defaults for this row. */
  inFlight?: number
  keys?: number
  sampleEvery?: number
  /** A floor under the run's warm-up, for rows whose fresh server processes load code lazily. */
  minWarmupMs?: number
  /** Before each contender's turn, e.g. FLUSHALL (with `keepServers`, only before its first). */
  reset?: () => Promise<void>
  /**
   * Server rows: set each contender up once, warm it up once for this long (ms), and measure it
   * in every round without starting it again. A Node server keeps getting faster for a minute or
   * more as V8 optimizes its code, so a fresh process per round measured its warm-up, not its
   * speed — and penalized the server with the most code (the gateway) most.
   */
  keepServers?: { warmupMs: number }
}

/** Gives the garbage of the previous contender no chance to be collected during the next one's turn. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc) {
    gc()
    gc()
  }
}

export function describeMeasure(m: Pick<Measure, 'opsPerSec' | 'p50Ms' | 'p99Ms'>, unit = 'ops/s'): string {
  return `${formatRate(m.opsPerSec)} ${unit}, p50 ${m.p50Ms.toFixed(3)} ms, p99 ${m.p99Ms.toFixed(3)} ms`
}

/**
 * Runs every contender in the same process for `rounds` rounds, alternating the order each round so
 * that neither side always runs first (or right after a GC-heavy rival). Each turn warms up, then
 * measures for a fixed duration. Throughput is the median over rounds; latencies merge all rounds.
 */
export async function contest(ctx: BenchContext, spec: ContestSpec): Promise<Measure[]> {
  const { options } = ctx
  const inFlight = spec.inFlight ?? options.inFlight
  const keys = spec.keys ?? options.keys
  const sampleEvery = spec.sampleEvery ?? 1
  const warmupMs = Math.max(options.warmupMs, spec.minWarmupMs ?? 0)
  const perContender = spec.contenders.map(() => ({
    rates: [] as number[],
    latencies: new LatencySamples(),
    ops: 0,
    allowed: 0,
    extras: new Map<string, number[]>(),
  }))

  const kept = new Map<number, Instance>()
  try {
    for (let round = 0; round < options.rounds; round++) {
      const order = spec.contenders.map((_, i) => i)
      if (round % 2 === 1) order.reverse()
      for (const index of order) {
        const contender = spec.contenders[index]!
        const acc = perContender[index]!
        const label = `${spec.id} · ${contender.name} · round ${round + 1}/${options.rounds}`
        let instance = kept.get(index)
        const fresh = instance === undefined
        if (instance === undefined) {
          await spec.reset?.()
          collectGarbage()
          instance = await contender.setup()
          if (spec.keepServers !== undefined) kept.set(index, instance)
        }
        try {
          const turnWarmupMs =
            spec.keepServers !== undefined && fresh ? Math.max(warmupMs, spec.keepServers.warmupMs) : warmupMs
          progress(`${label}: warm-up ${turnWarmupMs} ms`)
          await drive(instance.op, { inFlight, keys, sampleEvery, durationMs: turnWarmupMs })
          await instance.beforeMeasure?.()
          const result = await drive(instance.op, {
            inFlight,
            keys,
            sampleEvery,
            durationMs: options.durationMs,
            onProgress: (ops, ms) => progress(`${label}: ${formatRate((ops * 1000) / ms)} ops/s so far`),
          })
          const extra = (await instance.afterMeasure?.(result)) ?? {}
          const rate = (result.ops * 1000) / result.elapsedMs
          acc.rates.push(rate)
          acc.latencies.addAll(result.latencies.toArray())
          acc.ops += result.ops
          acc.allowed += result.allowed
          for (const [k, v] of Object.entries(extra)) acc.extras.set(k, [...(acc.extras.get(k) ?? []), v])
          const p = percentiles(result.latencies)
          progress(`${label}: ${describeMeasure({ opsPerSec: rate, ...p })}`)
        } finally {
          if (spec.keepServers === undefined) await instance.teardown()
        }
      }
    }
  } finally {
    for (const instance of kept.values()) await instance.teardown()
  }

  return spec.contenders.map((contender, i) => {
    const acc = perContender[i]!
    const p = percentiles(acc.latencies)
    const measure: Measure = {
      name: contender.name,
      opsPerSec: median(acc.rates),
      roundsOpsPerSec: acc.rates,
      p50Ms: p.p50Ms,
      p99Ms: p.p99Ms,
      allowedShare: acc.ops === 0 ? Number.NaN : acc.allowed / acc.ops,
    }
    if (acc.extras.size > 0) {
      measure.extra = Object.fromEntries([...acc.extras].map(([k, v]) => [k, median(v)]))
    }
    return measure
  })
}
