import type { Registry } from 'prom-client'
import type { RedisStore } from '../../store/redis/store.js'
import type { GatewayConfig } from '../config/schema.js'
import { MemoryBoard, RedisBoard } from './board.js'
import { DeploymentMetrics } from './metrics.js'
import { Deployments } from './router.js'

/**
 * The deployments of a config and their counters (undefined when it has none). The board lives
 * in Redis when the limits do, so that every instance follows it.
 */
export function openDeployments(
  config: GatewayConfig,
  redis: RedisStore | undefined,
  registry: Registry,
): { deployments: Deployments; metrics: DeploymentMetrics } | undefined {
  if (Object.keys(config.deployments).length === 0) return undefined
  const board = redis !== undefined ? new RedisBoard(redis.client, config.prefix) : new MemoryBoard()
  return { deployments: new Deployments(config, board), metrics: new DeploymentMetrics(registry) }
}
