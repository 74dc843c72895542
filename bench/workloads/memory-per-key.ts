import { Worker } from '../harness/child.js'
import { progress } from '../harness/progress.js'
import type { BenchContext, MemoryRow, Workload } from '../harness/types.js'
import type { HeapResult, HeapShape } from '../workers/memory-heap.js'

const WORKER = new URL('../workers/memory-heap.ts', import.meta.url)

async function heapPerKey(contender: 'sluice' | 'peer', shape: HeapShape, keys: number): Promise<HeapResult> {
  const worker = await Worker.start(WORKER, { contender, keys, shape }, ['--expose-gc'])
  try {
    const answer = await worker.request({ type: 'run', phase: 'measure', durationMs: 0 })
    if (answer.type !== 'result') throw new Error(`unexpected worker answer ${answer.type}`)
    return answer.value as HeapResult
  } finally {
    await worker.stop()
  }
}

const SHAPES: { shape: HeapShape; what: string; peer: string }[] = [
  { shape: 'one-limit', what: 'one limit', peer: 'RateLimiterMemory' },
  { shape: 'gateway-tier', what: 'gateway anonymous tier, after a call', peer: '3× RateLimiterMemory' },
  {
    shape: 'gateway-in-flight',
    what: 'gateway anonymous tier, call in flight',
    peer: '3× RateLimiterMemory',
  },
]

async function run(ctx: BenchContext) {
  const keys = ctx.options.memoryKeys
  const memory: MemoryRow[] = []
  for (const { shape, what, peer } of SHAPES) {
    progress(`memory-per-key · ${shape} · sluice MemoryStore: charging ${keys} subjects in a fresh process`)
    const sluice = await heapPerKey('sluice', shape, keys)
    progress(`memory-per-key · ${shape} · sluice MemoryStore: ${sluice.bytesPerKey.toFixed(0)} B/key`)
    progress(`memory-per-key · ${shape} · ${peer}: charging ${keys} subjects in a fresh process`)
    const other = await heapPerKey('peer', shape, keys)
    progress(`memory-per-key · ${shape} · ${peer}: ${other.bytesPerKey.toFixed(0)} B/key`)
    memory.push({
      id: `memory-per-key-${shape}`,
      what: `MemoryStore heap per subject at ${keys.toLocaleString('en')} subjects (${what})`,
      unit: 'per key',
      sluice: sluice.bytesPerKey,
      peer,
      peerBytes: other.bytesPerKey,
      ratio: other.bytesPerKey / sluice.bytesPerKey,
      note: `V8 heapUsed after full GC, before/after; key strings included; the store's own estimate (maxBytes is enforced on it): ${sluice.accountedPerKey!.toFixed(0)} B${shape === 'gateway-in-flight' ? '; the peer has no in-flight limit' : ''}`,
    })
  }
  return { memory }
}

export const memoryPerKey: Workload = {
  id: 'memory-per-key',
  title: 'MemoryStore heap bytes per subject at 1M subjects, vs RateLimiterMemory',
  needsRedis: false,
  run,
}
