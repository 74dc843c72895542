/**
 * The limits' public face: the factories, the definitions and what every layer asks of a limit.
 * Each algorithm is described once in src/core/algorithms/ (see its index.ts, the registry).
 */
export {
  ALGORITHMS,
  algorithmOf,
  type CalendarLimit,
  type ConcurrencyLimit,
  calendar,
  capacityOf,
  concurrency,
  type FixedWindowLimit,
  fixedWindow,
  isInFlight,
  isLimitKind,
  type LimitConfig,
  type LimitDefinition,
  type LimitKind,
  limitConfigSchemas,
  limitFromConfig,
  type SlidingLogLimit,
  type SlidingWindowLimit,
  slidingLog,
  slidingWindow,
  type TokenBucketLimit,
  tokenBucket,
  type Unit,
  WELL_KNOWN_UNITS,
  windowSecondsOf,
} from './algorithms/index.js'
