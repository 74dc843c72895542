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
import { allowedNote, throughputRow } from '../harness/rows.js'
import type { BenchContext, Workload } from '../harness/types.js'

/** Timing every op of an in-memory limiter would cost as much as the op; one in 16 is plenty. */
const SAMPLE_EVERY = 16

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
  const measures = await contest(ctx, { id, contenders: [sluice, peer], sampleEvery: SAMPLE_EVERY })
  const note = allowedNote(measures, 'all')
  return {
    rows: [
      throughputRow(
        id,
        policy ? 'MemoryStore, policy of 3 limits' : 'MemoryStore, one limit',
        measures,
        note ? { note } : {},
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
