export type { BlockParams } from './core/block.js'
export { SluiceInputError } from './core/errors.js'
export {
  type ConcurrencyLimit,
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
export { MemoryStore, type MemoryStoreOptions } from './store/memory.js'
export { RedisStore, type RedisStoreOptions } from './store/redis/store.js'
export type { LimitResult, OpMode, Store, StoreOp, StoreResult } from './store/types.js'
