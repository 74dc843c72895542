import type { Workload } from '../harness/types.js'
import { blockedKey, blockedKeySerial } from './blocked-key.js'
import { fastifyOverhead } from './fastify.js'
import { gateway32, gatewayOverhead, gatewaySerial } from './gateway.js'
import { memoryOneLimit, memoryPolicy } from './memory-decisions.js'
import { memoryPerKey } from './memory-per-key.js'
import { queueMemory, queueRedis } from './queue.js'
import { redisCluster } from './redis-cluster.js'
import { redisOneLimit, redisPolicy } from './redis-decisions.js'
import { redisMemory } from './redis-memory.js'
import { redisScaling } from './redis-scaling.js'
import { tokenEstimation } from './token-estimation.js'

/** Every workload, in the order a full run takes them. */
export const WORKLOADS: Workload[] = [
  memoryOneLimit,
  memoryPolicy,
  redisOneLimit,
  redisPolicy,
  queueMemory,
  queueRedis,
  blockedKey,
  blockedKeySerial,
  fastifyOverhead,
  gatewayOverhead,
  gateway32,
  gatewaySerial,
  tokenEstimation,
  redisScaling,
  redisCluster,
  memoryPerKey,
  redisMemory,
]
