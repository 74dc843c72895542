/**
 * Heap bytes per subject of an in-memory limiter: heap after a full GC, before and after charging
 * `keys` distinct subjects once each. Runs alone in its own process (started with --expose-gc) so
 * that nothing else lives in the heap. For sluice it also reports what the MemoryStore itself
 * accounts (`store.bytes`, the figure its `maxBytes` budget is enforced on), so that the estimate
 * can be checked against the heap it stands for.
 *
 * Shapes:
 * - one-limit: one token bucket, one consume per subject.
 * - gateway-tier: the gateway's anonymous tier (hourly sliding window, hourly tokens and a burst as
 *   token buckets, 4 calls in flight), alerts at 80 % and blocks on, as `sluice serve` runs it;
 *   each subject makes one call: reserve an estimate, then settle it. The peer: 3× RateLimiterMemory.
 * - gateway-in-flight: the same, with the call still in flight (its lease held).
 */

import { concurrency, Limiter, slidingWindow, tokenBucket } from '../../src/index.js'
import { MemoryStore, peerMemoryOneLimit, peerMemoryPolicy, sluiceOneLimit } from '../contenders.js'
import { send, serve, workerConfig } from '../harness/child.js'

export type HeapShape = 'one-limit' | 'gateway-tier' | 'gateway-in-flight'

interface Config {
  contender: 'sluice' | 'peer'
  keys: number
  shape: HeapShape
}

export interface HeapResult {
  bytesPerKey: number
  /** sluice only: the store's own estimate per subject. */
  accountedPerKey?: number
  keys: number
}

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('memory-heap worker needs --expose-gc')
  for (let i = 0; i < 3; i++) gc()
  return process.memoryUsage().heapUsed
}

const { contender, keys, shape } = workerConfig<Config>()
const HOUR_MS = 3_600_000

/** The gateway's anonymous tier (src/http/tiers.ts and src/gateway/tiers.ts defaults). */
function gatewayTier(store: MemoryStore): Limiter {
  return new Limiter({
    store,
    policy: 'anonymous',
    limits: {
      hourly: slidingWindow({ limit: 20, windowMs: HOUR_MS }),
      tokens: tokenBucket({ capacity: 10_000, refillPerSecond: 10_000 / 3600, unit: 'tokens' }),
      burst: tokenBucket({ capacity: 20, refillPerSecond: 2 }),
      inflight: concurrency({ limit: 4, leaseMs: 600_000 }),
    },
    alertAt: 0.8,
    block: true,
  })
}

function sluiceCall(store: MemoryStore): (subject: string) => Promise<unknown> {
  if (shape === 'one-limit') {
    const limiter = sluiceOneLimit(store)
    return (s) => limiter.consume(s)
  }
  const limiter = gatewayTier(store)
  return async (s) => {
    const r = await limiter.reserve(s, { tokens: 500 })
    if (!r.allowed) throw new Error(`subject ${s} was denied: the bench would measure nothing`)
    if (shape === 'gateway-tier') await r.settle({ tokens: 300 })
  }
}

function peerCall(): (subject: string) => Promise<unknown> {
  if (shape === 'one-limit') {
    const limiter = peerMemoryOneLimit()
    return (s) => limiter.consume(s, 1)
  }
  const [hourly, tokens, burst] = peerMemoryPolicy()
  return async (s) => {
    await hourly.consume(s, 1)
    await tokens.consume(s, 300)
    await burst.consume(s, 1)
  }
}

async function measure(): Promise<HeapResult> {
  // Build the limiter first: its fixed cost is not per key.
  const store =
    contender === 'sluice' ? new MemoryStore({ maxBytes: 2 ** 40, maxKeys: keys + 10 }) : undefined
  const call = store ? sluiceCall(store) : peerCall()
  await call('warm-up')
  const before = heapAfterGc()
  const accountedBefore = store?.bytes ?? 0
  for (let i = 0; i < keys; i++) await call(`user-${i}`)
  const after = heapAfterGc()
  if (store && store.size - 1 !== keys) {
    throw new Error(`expected ${keys} keys in the store, found ${store.size - 1}`)
  }
  const result: HeapResult = { bytesPerKey: (after - before) / keys, keys }
  if (store) result.accountedPerKey = (store.bytes - accountedBefore) / keys
  return result
}

serve(
  async (m) => (m.type === 'run' ? { type: 'result', value: await measure() } : undefined),
  async () => {},
)
send({ type: 'ready' })
