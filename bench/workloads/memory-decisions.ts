import {
  MemoryStore,
  POLICY_COSTS,
  peerMemoryOneLimit,
  peerMemoryPolicy,
  peerOp,
  peerPolicyOp,
  sluiceOneLimit,
  sluiceOp,
  sluicePolicy,
  subjects,
} from '../contenders.js'
import { type Contender, contest } from '../harness/contest.js'
import { formatRate, progress } from '../harness/progress.js'
import { allowedNote, pairedRatio, throughputRow } from '../harness/rows.js'
import { measureSyncLoop } from '../harness/sync-loop.js'
import type { BenchContext, Measure, Workload } from '../harness/types.js'

/** Timing every op of an in-memory limiter would cost as much as the op; one in 16 is plenty. */
const SAMPLE_EVERY = 16

/** Made once: the no-op must cost the harness's own work and nothing more, not even an allocation. */
const TRUE = Promise.resolve(true)

/** Limits nothing: the most decisions/s this harness can count, which no limiter can beat. */
const noop: Contender = {
  name: 'no-op (harness ceiling)',
  async setup() {
    return { op: () => TRUE, teardown: async () => {} }
  },
}

async function run(ctx: BenchContext, policy: boolean) {
  const subjectOf = subjects(ctx.options.keys)
  const sluice: Contender = {
    name: 'sluice MemoryStore',
    async setup() {
      const store = new MemoryStore()
      const limiter = policy ? sluicePolicy(store) : sluiceOneLimit(store)
      return {
        op: policy ? sluiceOp(limiter, subjectOf, POLICY_COSTS) : sluiceOp(limiter, subjectOf),
        teardown: () => store.close(),
      }
    },
  }
  const peer: Contender = {
    name: policy ? '3× RateLimiterMemory' : 'RateLimiterMemory',
    async setup() {
      return {
        op: policy ? peerPolicyOp(peerMemoryPolicy(), subjectOf) : peerOp(peerMemoryOneLimit(), subjectOf),
        teardown: async () => {},
      }
    },
  }
  const id = policy ? 'memory-policy' : 'memory-1-limit'
  const measures = await contest(ctx, {
    id,
    contenders: [sluice, peer, noop],
    sampleEvery: SAMPLE_EVERY,
  })
  const [sluiceM, peerM, ceiling] = measures as [Measure, Measure, Measure]
  // The synchronous API the HTTP adapters use with a MemoryStore, outside the lanes (no promise).
  const direct = measureSyncLoop(
    'sluice consumeSync, plain loop',
    () => {
      const limiter = (policy ? sluicePolicy : sluiceOneLimit)(
        new MemoryStore({ sweepIntervalMs: 3_600_000 }),
      )
      return policy
        ? (k) => limiter.consumeSync(subjectOf[k]!, POLICY_COSTS).allowed
        : (k) => limiter.consumeSync(subjectOf[k]!).allowed
    },
    { ...ctx.options, sampleEvery: SAMPLE_EVERY },
  )
  progress(`${id} · ${direct.name}: ${formatRate(direct.opsPerSec)} ops/s`)
  const note = [
    `harness ceiling (an op that does nothing): ${formatRate(ceiling.opsPerSec)}/s = ${pairedRatio(ceiling, peerM).toFixed(1)}× the peer`,
    `consumeSync in a plain loop (no promise; not comparable with the lanes): ${formatRate(direct.opsPerSec)}/s`,
    allowedNote([...measures, direct], 'all'),
  ]
    .filter(Boolean)
    .join('; ')
  return {
    rows: [
      // The ceiling is the row's baseline: in the JSON, never in the ratio (the peer is there).
      throughputRow(
        id,
        policy ? 'MemoryStore, policy of 3 limits' : 'MemoryStore, one limit',
        [sluiceM, peerM],
        { note, baseline: ceiling, others: [direct] },
      ),
    ],
  }
}

export const memoryOneLimit: Workload = {
  id: 'memory-1-limit',
  title: 'MemoryStore decisions/s, one limit, vs RateLimiterMemory',
  needsRedis: false,
  run: (ctx) => run(ctx, false),
}

export const memoryPolicy: Workload = {
  id: 'memory-policy',
  title: 'MemoryStore decisions/s, policy of 3 limits, vs three RateLimiterMemory in a row',
  needsRedis: false,
  run: (ctx) => run(ctx, true),
}
