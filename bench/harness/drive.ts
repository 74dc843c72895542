import { LatencySamples } from './latency.js'

/** One decision for the key with this index; resolves true when allowed, false when denied. */
export type Operation = (key: number) => Promise<boolean>

export interface DriveOptions {
  /** Operations kept in flight (closed loop: each lane starts its next one when the last ends). */
  inFlight: number
  durationMs: number
  /** Keys are used round-robin, 0 … keys-1, across all lanes. */
  keys: number
  /** Time one operation in this many (timing every op of an in-memory store costs more than the op). */
  sampleEvery: number
  /** Called about once per `progressEveryMs` with the running count. */
  onProgress?: (ops: number, elapsedMs: number) => void
  progressEveryMs?: number
}

export interface DriveResult {
  ops: number
  /** Operations that ended, those after the deadline too (all that were started): what a server did. */
  ended: number
  allowed: number
  elapsedMs: number
  latencies: LatencySamples
}

/**
 * Runs `op` with `inFlight` lanes for `durationMs`. Operations that complete after the deadline are
 * not counted. The deadline is checked from inside the lanes, not only by a timer, because a
 * synchronous store resolves its promises in microtasks and would starve timers until the end.
 */
export async function drive(op: Operation, options: DriveOptions): Promise<DriveResult> {
  const { inFlight, durationMs, keys, sampleEvery } = options
  const progressEveryMs = options.progressEveryMs ?? 1000
  const latencies = new LatencySamples()
  const start = performance.now()
  const deadline = start + durationMs
  let nextProgress = start + progressEveryMs
  let stopped = false
  let stoppedAt = deadline
  let ops = 0
  let ended = 0
  let allowed = 0
  let cursor = 0
  let sampleCountdown = sampleEvery
  let failure: unknown

  const check = () => {
    const now = performance.now()
    if (now >= deadline) {
      stopped = true
      stoppedAt = now
    } else if (now >= nextProgress) {
      nextProgress = now + progressEveryMs
      options.onProgress?.(ops, now - start)
    }
  }
  const timer = setTimeout(check, durationMs + 1)

  const lane = async () => {
    while (!stopped) {
      const key = cursor
      cursor = cursor + 1 === keys ? 0 : cursor + 1
      const timed = --sampleCountdown === 0
      if (timed) sampleCountdown = sampleEvery
      const t0 = timed ? performance.now() : 0
      let ok: boolean
      try {
        ok = await op(key)
      } catch (error) {
        failure ??= error
        stopped = true
        return
      }
      ended++
      if (stopped) return
      if (timed) latencies.add(performance.now() - t0)
      ops++
      if (ok) allowed++
      if ((ops & 63) === 0) check()
    }
  }

  await Promise.all(Array.from({ length: inFlight }, lane))
  clearTimeout(timer)
  if (failure !== undefined) throw failure
  return { ops, ended, allowed, elapsedMs: stoppedAt - start, latencies }
}
