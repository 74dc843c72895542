import { monitorEventLoopDelay } from 'node:perf_hooks'
import { sleep } from '../helpers/sleep.js'

export interface Sample<T> {
  /** performance.now() when the call started. */
  at: number
  /** How long the call took to settle, in ms. */
  ms: number
  value?: T
  error?: unknown
}

export interface Load<T> {
  samples: Sample<T>[]
  /** Stops the loops, waits for the calls in flight, and returns every sample. */
  stop(): Promise<Sample<T>[]>
  /** The longest event-loop stall seen while the load ran (ms): time no call could have been answered in. */
  maxLoopDelayMs(): number
}

/**
 * A light, steady load: `workers` loops, each calling `call(worker)` then pausing `pauseMs`.
 * Records the duration and outcome of every call.
 */
export function startLoad<T>(call: (worker: number) => Promise<T>, workers = 6, pauseMs = 10): Load<T> {
  const samples: Sample<T>[] = []
  let running = true
  const delay = monitorEventLoopDelay({ resolution: 5 })
  delay.enable()
  const loop = async (worker: number) => {
    while (running) {
      const at = performance.now()
      const sample: Sample<T> = { at, ms: 0 }
      try {
        sample.value = await call(worker)
      } catch (error) {
        sample.error = error
      }
      sample.ms = performance.now() - at
      samples.push(sample)
      await sleep(pauseMs)
    }
  }
  const loops = Array.from({ length: workers }, (_, w) => loop(w))
  return {
    samples,
    maxLoopDelayMs: () => delay.max / 1e6,
    stop: async () => {
      running = false
      await Promise.all(loops)
      delay.disable()
      return samples
    },
  }
}

/** Polls `check` every 10 ms until it returns true; fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
