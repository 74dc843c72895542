import { RedisStore } from '../redis/store.js'
import type { Store } from '../types.js'
import { MemoryDetectorStore } from './memory.js'
import { RedisDetectorStore } from './redis.js'
import type { DetectorStore } from './types.js'

/**
 * Detector state lives where the limits do: in Redis (same client and prefix) when the limits are
 * in Redis, so every instance sees one state; in this process otherwise.
 */
export function detectorStoreFor(store: Store | undefined, prefix: string): DetectorStore {
  return store instanceof RedisStore
    ? new RedisDetectorStore({ client: store.client, prefix })
    : new MemoryDetectorStore()
}
