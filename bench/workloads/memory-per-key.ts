import { Worker } from '../harness/child.js'
import { progress } from '../harness/progress.js'
import type { BenchContext, MemoryRow, Workload } from '../harness/types.js'

const WORKER = new URL('../workers/memory-heap.ts', import.meta.url)

async function bytesPerKey(contender: 'sluice' | 'peer', keys: number): Promise<number> {
  const worker = await Worker.start(WORKER, { contender, keys }, ['--expose-gc'])
  try {
    const answer = await worker.request({ type: 'run', phase: 'measure', durationMs: 0 })
    if (answer.type !== 'result') throw new Error(`unexpected worker answer ${answer.type}`)
    return (answer.value as { bytesPerKey: number }).bytesPerKey
  } finally {
    await worker.stop()
  }
}

async function run(ctx: BenchContext) {
  const keys = ctx.options.memoryKeys
  progress(`memory-per-key · sluice MemoryStore: charging ${keys} subjects in a fresh process`)
  const sluice = await bytesPerKey('sluice', keys)
  progress(`memory-per-key · sluice MemoryStore: ${sluice.toFixed(0)} B/key`)
  progress(`memory-per-key · RateLimiterMemory: charging ${keys} subjects in a fresh process`)
  const peer = await bytesPerKey('peer', keys)
  progress(`memory-per-key · RateLimiterMemory: ${peer.toFixed(0)} B/key`)
  const row: MemoryRow = {
    id: 'memory-per-key',
    what: `MemoryStore heap per key at ${keys.toLocaleString('en')} keys (one limit)`,
    unit: 'per key',
    sluice,
    peer: 'RateLimiterMemory',
    peerBytes: peer,
    ratio: peer / sluice,
    note: 'V8 heapUsed after full GC, before/after; key strings included',
  }
  return { memory: [row] }
}

export const memoryPerKey: Workload = {
  id: 'memory-per-key',
  title: 'MemoryStore heap bytes per key at 1M keys, vs RateLimiterMemory',
  needsRedis: false,
  run,
}
