import type { Worker } from './child.js'
import type { Instance } from './contest.js'

type Readings = Pick<Instance, 'beforeMeasure' | 'afterMeasure'>

/** CPU time of a server process per request of the measured period (µs), read around it. */
export function serverCpu(worker: Worker): Readings {
  let before = 0
  return {
    async beforeMeasure() {
      before = await worker.cpuMicros()
    },
    async afterMeasure(result) {
      return { serverCpuUsPerReq: ((await worker.cpuMicros()) - before) / result.ops }
    },
  }
}

/** Several readings around the same measured period, their figures merged. */
export function readTogether(...parts: Readings[]): Readings {
  return {
    async beforeMeasure() {
      for (const p of parts) await p.beforeMeasure?.()
    },
    async afterMeasure(result) {
      const figures: Record<string, number> = {}
      for (const p of parts) Object.assign(figures, await p.afterMeasure?.(result))
      return figures
    },
  }
}
