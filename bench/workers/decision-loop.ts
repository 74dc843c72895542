/**
 * Runs a fixed number of memory decisions, for scripts/decision-instructions.ts to count their
 * instructions under cachegrind: `decision-loop <subject> <warm-up> <count>`, where subject is
 * one of SUBJECTS below. The limiters and the lanes are the bench rows' own (bench/memory-contenders.ts,
 * bench/harness/drive.ts): 256 lanes each awaiting its next op, keys round-robin over 1,000
 * subjects, one op in 16 timed. Only the stop differs: after `count` ops instead of a deadline,
 * so that two runs with different counts differ by exactly those decisions.
 */
import { Sluice } from '../../src/http/core.js'
import type { HeaderGroups } from '../../src/http/headers.js'
import { tokenBucket } from '../../src/index.js'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis/store.js'
import type { Operation } from '../harness/drive.js'
import { LatencySamples } from '../harness/latency.js'
import {
  POLICY_COSTS,
  peerMemoryOneLimit,
  peerMemoryPolicy,
  peerOp,
  peerPolicyOp,
  sluiceOneLimit,
  sluiceOp,
  sluicePolicy,
  subjects,
} from '../memory-contenders.js'

const IN_FLIGHT = 256
const KEYS = 1_000
const SAMPLE_EVERY = 16
const subjectOf = subjects(KEYS)
const TRUE = Promise.resolve(true)
const allowedOf = (d: { allowed: boolean }) => d.allowed

/** The Fastify row's tier: one per-IP limit a run cannot exhaust. */
const HTTP_TIERS = {
  anonymous: { scope: 'ip', limits: { rps: tokenBucket({ capacity: 1e9, refillPerSecond: 1 }) } },
} as const
const HTTP_HEADERS = { host: '127.0.0.1:3000', 'user-agent': 'autocannon', accept: '*/*' }
const addresses = Array.from({ length: KEYS }, (_, i) => `10.0.${i >> 8}.${i & 255}`)
/** Where an adapter would put the headers (its framework's reply): read once per request. */
const sink: Record<string, string> = {}
function copyHeaders(headers: Record<string, string>): void {
  for (const name in headers) sink[name] = headers[name]!
}

/**
 * The middleware's whole check of a request (identify by IP, decide, graduate, build the
 * headers), as every adapter calls it, its headers handed on. Without groups: no headers.
 */
function httpCheck(groups?: HeaderGroups): Runner {
  const core = new Sluice({
    store: store(),
    logger: false,
    tiers: HTTP_TIERS,
    ...(groups === undefined ? {} : { headers: groups }),
  })
  return {
    kind: 'loop',
    op: (k) => {
      const result = core.checkNow({
        method: 'GET',
        url: '/',
        headers: HTTP_HEADERS,
        remoteAddress: addresses[k],
      })
      if (result instanceof Promise) throw new Error('a MemoryStore check answers at once')
      copyHeaders(result.headers)
      return result.proceed
    },
  }
}

type Runner = { kind: 'lanes'; op: Operation } | { kind: 'loop'; op: (k: number) => boolean }

const store = () => new MemoryStore({ sweepIntervalMs: 3_600_000 })
const redisStore = () =>
  new RedisStore({ url: process.env.SLUICE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' })

export const SUBJECTS: Record<string, () => Runner> = {
  'sluice-1': () => ({ kind: 'lanes', op: sluiceOp(sluiceOneLimit(store()), subjectOf) }),
  'sluice-3': () => ({ kind: 'lanes', op: sluiceOp(sluicePolicy(store()), subjectOf, POLICY_COSTS) }),
  'peer-1': () => ({ kind: 'lanes', op: peerOp(peerMemoryOneLimit(), subjectOf) }),
  'peer-3': () => ({ kind: 'lanes', op: peerPolicyOp(peerMemoryPolicy(), subjectOf) }),
  'sluice-1-queue': () => {
    const limiter = sluiceOneLimit(store())
    const wait = { maxWaitMs: 1000 }
    return { kind: 'lanes', op: (k) => limiter.consume(subjectOf[k]!, undefined, wait).then(allowedOf) }
  },
  // The Node side of a RedisStore decision (the Redis at SLUICE_BENCH_REDIS_URL decides).
  'redis-1': () => ({ kind: 'lanes', op: sluiceOp(sluiceOneLimit(redisStore()), subjectOf) }),
  'redis-1-queue': () => {
    const limiter = sluiceOneLimit(redisStore())
    const wait = { maxWaitMs: 1000 }
    return { kind: 'lanes', op: (k) => limiter.consume(subjectOf[k]!, undefined, wait).then(allowedOf) }
  },
  noop: () => ({ kind: 'lanes', op: () => TRUE }),
  'sluice-1-sync': () => {
    const limiter = sluiceOneLimit(store())
    return { kind: 'loop', op: (k) => limiter.consumeSync(subjectOf[k]!).allowed }
  },
  'http-check': () => httpCheck(),
  'http-check-no-headers': () => httpCheck({ ietf: false, legacy: false, openai: false }),
  // The floor: the same headers handed on as constants (the Fastify row's `bare-headers`).
  'http-headers-only': () => {
    const check = httpCheck()
    if (check.kind !== 'loop') throw new Error('loop expected')
    check.op(0)
    const constant = { ...sink }
    return {
      kind: 'loop',
      op: () => {
        copyHeaders(constant)
        return true
      },
    }
  },
  'sluice-3-sync': () => {
    const limiter = sluicePolicy(store())
    return { kind: 'loop', op: (k) => limiter.consumeSync(subjectOf[k]!, POLICY_COSTS).allowed }
  },
}

/** bench/harness/drive.ts's lanes, stopping after `count` ops. */
async function lanes(op: Operation, count: number): Promise<number> {
  const latencies = new LatencySamples()
  let started = 0
  let allowed = 0
  let cursor = 0
  let sampleCountdown = SAMPLE_EVERY
  const lane = async () => {
    while (started < count) {
      started++
      const key = cursor
      cursor = cursor + 1 === KEYS ? 0 : cursor + 1
      const timed = --sampleCountdown === 0
      if (timed) sampleCountdown = SAMPLE_EVERY
      const t0 = timed ? performance.now() : 0
      const ok = await op(key)
      if (timed) latencies.add(performance.now() - t0)
      if (ok) allowed++
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  return allowed
}

/** bench/harness/sync-loop.ts's loop, stopping after `count` ops. */
function loop(op: (k: number) => boolean, count: number): number {
  const latencies = new LatencySamples()
  let allowed = 0
  let key = 0
  for (let i = 0; i < count; i++) {
    const timed = i % SAMPLE_EVERY === 0
    const t0 = timed ? performance.now() : 0
    if (op(key)) allowed++
    if (timed) latencies.add(performance.now() - t0)
    key = key + 1 === KEYS ? 0 : key + 1
  }
  return allowed
}

async function main(): Promise<void> {
  const [name, warmupText, countText] = process.argv.slice(2)
  const make = name === undefined ? undefined : SUBJECTS[name]
  const warmup = Number(warmupText)
  const count = Number(countText)
  if (
    make === undefined ||
    !Number.isInteger(warmup) ||
    !Number.isInteger(count) ||
    warmup < 0 ||
    count < 0
  ) {
    console.error(`usage: decision-loop <${Object.keys(SUBJECTS).join('|')}> <warm-up> <count>`)
    process.exit(2)
  }
  const runner = make()
  const run = (n: number) => (runner.kind === 'lanes' ? lanes(runner.op, n) : loop(runner.op, n))
  const warmAllowed = await run(warmup)
  const allowed = await run(count)
  // Every decision must be an admission, as in the bench rows: otherwise the counts compare other work.
  if (warmAllowed !== warmup || allowed !== count) {
    console.error(`decision-loop ${name}: ${warmAllowed + allowed} of ${warmup + count} allowed`)
    process.exit(1)
  }
  // A Redis subject's connection would keep the process alive.
  process.exit(0)
}

await main()
