import { describe, SluiceInputError } from '../errors.js'
import { calendarAlgorithm } from './calendar.js'
import { concurrencyAlgorithm } from './concurrency.js'
import { fixedWindowAlgorithm } from './fixed-window.js'
import { slidingLogAlgorithm } from './sliding-log.js'
import { slidingWindowAlgorithm } from './sliding-window.js'
import { tokenBucketAlgorithm } from './token-bucket.js'
import type { Algorithm, ConfigKit } from './types.js'

export { type CalendarLimit, calendar } from './calendar.js'
export { type ConcurrencyLimit, concurrency } from './concurrency.js'
export { type FixedWindowLimit, fixedWindow } from './fixed-window.js'
export { WELL_KNOWN_UNITS } from './options.js'
export { type SlidingLogLimit, slidingLog } from './sliding-log.js'
export { type SlidingWindowLimit, slidingWindow } from './sliding-window.js'
export { type TokenBucketLimit, tokenBucket } from './token-bucket.js'
export type * from './types.js'

/**
 * THE registry: every limit algorithm sluice has, by kind. Every other layer reads an algorithm's
 * description from here (algorithmOf); adding an algorithm is adding its description here.
 */
export const ALGORITHMS = {
  tokenBucket: tokenBucketAlgorithm,
  fixedWindow: fixedWindowAlgorithm,
  slidingWindow: slidingWindowAlgorithm,
  slidingLog: slidingLogAlgorithm,
  concurrency: concurrencyAlgorithm,
  calendar: calendarAlgorithm,
} as const

type Registry = typeof ALGORITHMS
export type LimitKind = keyof Registry
type DefinitionOf<A> = A extends Algorithm<infer D, infer _S, infer _C> ? D : never
type ConfigOf<A> = A extends Algorithm<infer _D, infer _S, infer C> ? C : never

/** A limit: what one of the registered algorithms' factories makes. */
export type LimitDefinition = { [K in LimitKind]: DefinitionOf<Registry[K]> }[LimitKind]
/** A limit as written in sluice.yaml. */
export type LimitConfig = { [K in LimitKind]: ConfigOf<Registry[K]> }[LimitKind]

/** Each entry is filed under its own kind (a type error otherwise). */
const _filedUnderItsKind: { [K in LimitKind]: { kind: K } } = ALGORITHMS
void _filedUnderItsKind

// biome-ignore lint/suspicious/noExplicitAny: the registry holds algorithms of every state type
type AnyAlgorithm = Algorithm<LimitDefinition, any, any>

const BY_KIND = new Map<string, AnyAlgorithm>(Object.entries(ALGORITHMS) as [string, AnyAlgorithm][])

export function isLimitKind(kind: unknown): kind is LimitKind {
  return typeof kind === 'string' && BY_KIND.has(kind)
}

/** The description of an algorithm; throws for a kind sluice does not have (never a silent default). */
export function algorithmOf(kind: string): AnyAlgorithm {
  const algorithm = BY_KIND.get(kind)
  if (algorithm === undefined) {
    throw new SluiceInputError(
      `unknown limit kind ${describe(kind)} (known: ${[...BY_KIND.keys()].join(', ')})`,
    )
  }
  return algorithm
}

/** Every registered algorithm, in registry order. */
export function algorithms(): AnyAlgorithm[] {
  return [...BY_KIND.values()]
}

export function capacityOf(limit: LimitDefinition): number {
  return algorithmOf(limit.kind).capacity(limit)
}

/** Seconds the limit describes: a window, a period, or the time to refill an empty bucket. */
export function windowSecondsOf(limit: LimitDefinition): number {
  return algorithmOf(limit.kind).windowSeconds(limit)
}

/** Whether a limit of this kind counts calls in flight (see Algorithm.inFlight). */
export function isInFlight(kind: string): boolean {
  return BY_KIND.get(kind)?.inFlight === true
}

/** The limit's YAML schemas, one per algorithm, for the gateway's discriminated union. */
export function limitConfigSchemas(kit: ConfigKit) {
  return algorithms().map((a) => a.config.schema(kit))
}

/** A LimitDefinition from its YAML form (already parsed by limitConfigSchemas). */
export function limitFromConfig(config: LimitConfig): LimitDefinition {
  return algorithmOf(config.kind).config.toLimit(config)
}
