/**
 * Servers measured side by side: in each round every side gets its load at the same time, so
 * that whatever else the machine does in that round falls on all of them alike, and a ratio of
 * two sides' figures in the same round is far steadier than one of turns run one after another
 * (on a shared 2-core machine those swung 0.73×–1.95× between runs of the same code). Each side's
 * CPU is read around the round: its server process's and, when it has a redis-server of its own,
 * that server's (`INFO cpu`, user + system) — with one redis-server per side, each side's share
 * of Redis can be told apart.
 */
import type { Worker } from './child.js'
import { median } from './latency.js'
import { redisCpuTotalSeconds } from './redis-cost.js'

export interface CpuSide {
  /** The server process whose CPU is read. */
  worker: Worker
  /** Its own redis-server (nothing else may use it during a round), whose CPU is read too. */
  redis?: { info(section: string): Promise<string> } | undefined
}

export interface SideTurn<T> {
  result: T
  /** CPU its server process spent during the round, µs. */
  serverUs: number
  /** CPU its redis-server spent during the round, µs (0 without one). */
  redisUs: number
}

/** CPU so far, µs: the side's server process's and its redis-server's (0 without one). */
async function cpuNow(side: CpuSide): Promise<[number, number]> {
  const [server, info] = await Promise.all([side.worker.cpuMicros(), side.redis?.info('cpu')])
  return [server, info === undefined ? 0 : redisCpuTotalSeconds(info) * 1e6]
}

/**
 * Runs every side's `work` at the same time (every CPU read before any starts, and after all have
 * ended) and answers each side's result and the CPU it cost, in the order of `sides`.
 */
export async function together<S extends CpuSide, T>(
  sides: S[],
  work: (side: S) => Promise<T>,
): Promise<SideTurn<T>[]> {
  const before = await Promise.all(sides.map(cpuNow))
  const results = await Promise.all(sides.map(work))
  const after = await Promise.all(sides.map(cpuNow))
  return sides.map((_, i) => ({
    result: results[i]!,
    serverUs: after[i]![0] - before[i]![0],
    redisUs: after[i]![1] - before[i]![1],
  }))
}

/** a ÷ b round by round. */
export function roundRatios(a: number[], b: number[]): number[] {
  return a.map((x, i) => x / b[i]!)
}

/** "1.014×, 0.959×, 1.194×; median 1.014×" */
export function ratiosText(ratios: number[]): string {
  const x = (r: number) => `${r.toFixed(3)}×`
  return `${ratios.map(x).join(', ')}; median ${x(median(ratios))}`
}
