export {
  type ComposedDecision,
  ComposedReservation,
  type ComposeOptions,
  Composite,
  compose,
  type Level,
} from './compose.js'
export type { BlockParams } from './core/block.js'
export {
  type DetectorName,
  type DetectorsInput,
  fingerprint,
  resolveDetectors,
} from './core/detectors/index.js'
export { SluiceInputError } from './core/errors.js'
export {
  type CalendarLimit,
  type ConcurrencyLimit,
  calendar,
  concurrency,
  type FixedWindowLimit,
  fixedWindow,
  type LimitDefinition,
  type SlidingLogLimit,
  type SlidingWindowLimit,
  slidingLog,
  slidingWindow,
  type TokenBucketLimit,
  tokenBucket,
  type Unit,
} from './core/limits.js'
export {
  type BlockOptions,
  type Costs,
  type Decision,
  Limiter,
  type LimiterOptions,
  type LimitStatus,
  Reservation,
} from './limiter.js'
export { SluiceMetrics, type SluiceMetricsOptions } from './metrics.js'
export {
  BlockedKeyCache,
  type BlockedKeyCacheObserver,
  type BlockedKeyCacheOptions,
  CachedStore,
  type InvalidationBus,
} from './store/blocked-cache.js'
export type { BreakerState } from './store/breaker.js'
export { MemoryDetectorStore, type MemoryDetectorStoreOptions } from './store/detectors/memory.js'
export { RedisDetectorStore, type RedisDetectorStoreOptions } from './store/detectors/redis.js'
export type { DetectionRecord, DetectorStore, SubjectView } from './store/detectors/types.js'
export { StoreTimeoutError, StoreUnavailableError } from './store/errors.js'
export {
  FAIL_MODES,
  type FailMode,
  GuardedStore,
  type GuardedStoreOptions,
  type GuardObserver,
  type StoreHealth,
  type StoreLogger,
} from './store/guarded.js'
export { MemoryStore, type MemoryStoreOptions } from './store/memory.js'
export type { IORedisClient, NodeRedisClient, RedisClient } from './store/redis/connection.js'
export { RedisInvalidationBus, type RedisInvalidationBusOptions } from './store/redis/invalidation.js'
export {
  clusterClientOptions,
  nodeRedisClientOptions,
  RedisStore,
  type RedisStoreOptions,
  redisClientOptions,
} from './store/redis/store.js'
export type { LimitResult, OpMode, Store, StoreOp, StoreResult } from './store/types.js'
