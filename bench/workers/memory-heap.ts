/**
 * Heap bytes per key of an in-memory limiter: heap after a full GC, before and after charging
 * `keys` distinct subjects once each. Runs alone in its own process (started with --expose-gc) so
 * that nothing else lives in the heap.
 */
import { MemoryStore, peerMemoryOneLimit, sluiceOneLimit } from '../contenders.js'
import { send, serve, workerConfig } from '../harness/child.js'

interface Config {
  contender: 'sluice' | 'peer'
  keys: number
}

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('memory-heap worker needs --expose-gc')
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

const { contender, keys } = workerConfig<Config>()

async function measure(): Promise<{ bytesPerKey: number; keys: number }> {
  // Build the limiter first: its fixed cost is not per key.
  const store = contender === 'sluice' ? new MemoryStore({ maxKeys: keys + 1 }) : undefined
  const limiter = store ? sluiceOneLimit(store) : peerMemoryOneLimit()
  const consume = (s: string) => limiter.consume(s)
  await consume('warm-up')
  const before = heapAfterGc()
  for (let i = 0; i < keys; i++) await consume(`user-${i}`)
  const after = heapAfterGc()
  const held = store ? store.size - 1 : keys
  if (held !== keys) throw new Error(`expected ${keys} keys in the store, found ${held}`)
  return { bytesPerKey: (after - before) / keys, keys }
}

serve(
  async (m) => (m.type === 'run' ? { type: 'result', value: await measure() } : undefined),
  async () => {},
)
send({ type: 'ready' })
