import type { BlockParams } from './core/block.js'
import { describe, requirePositiveInteger, SluiceInputError } from './core/errors.js'
import { algorithmOf, isLimitKind, type LimitDefinition } from './core/limits.js'

export interface BlockOptions {
  /** Denials within `withinMs` that start a block (default 10). */
  after?: number
  withinMs?: number
  /** Successive block lengths; the last repeats (default 1 min, 5 min, 15 min, 1 h). */
  durationsMs?: number[]
  /** How long after a block ends its level is remembered (default 24 h). */
  forgetMs?: number
}

/** Rebuilds a limit through its algorithm's factory so that hand-made objects get the same checks. */
export function normalizeLimit(name: string, def: unknown): LimitDefinition {
  if (typeof def !== 'object' || def === null) {
    throw new SluiceInputError(
      `limits.${name} must be made with tokenBucket(), slidingWindow(), …, got ${describe(def)}`,
    )
  }
  const kind = (def as { kind?: unknown }).kind
  if (!isLimitKind(kind)) throw new SluiceInputError(`limits.${name} has unknown kind ${describe(kind)}`)
  try {
    return algorithmOf(kind).normalize(def)
  } catch (error) {
    if (error instanceof SluiceInputError) throw new SluiceInputError(`limits.${name}: ${error.message}`)
    throw error
  }
}

const BLOCK_OPTION_NAMES = new Set(['after', 'withinMs', 'durationsMs', 'forgetMs'])

export function blockParams(option: BlockOptions | boolean | undefined): BlockParams | undefined {
  if (option === undefined || option === false) return undefined
  const o: BlockOptions = option === true ? {} : option
  if (typeof o !== 'object' || o === null)
    throw new SluiceInputError(`block must be an object, got ${describe(o)}`)
  // A misspelt option (say `within: '1m'`) would otherwise fall back to its default unseen.
  for (const name of Object.keys(o)) {
    if (!BLOCK_OPTION_NAMES.has(name)) {
      throw new SluiceInputError(
        `block.${name} is not an option (known: ${[...BLOCK_OPTION_NAMES].join(', ')})`,
      )
    }
  }
  const durationsMs = o.durationsMs ?? [60_000, 300_000, 900_000, 3_600_000]
  if (!Array.isArray(durationsMs) || durationsMs.length === 0) {
    throw new SluiceInputError(`block.durationsMs must be a non-empty array, got ${describe(durationsMs)}`)
  }
  return {
    after: o.after === undefined ? 10 : requirePositiveInteger(o.after, 'block.after'),
    withinMs: o.withinMs === undefined ? 60_000 : requirePositiveInteger(o.withinMs, 'block.withinMs'),
    durationsMs: durationsMs.map((d, i) => requirePositiveInteger(d, `block.durationsMs[${i}]`)),
    forgetMs: o.forgetMs === undefined ? 86_400_000 : requirePositiveInteger(o.forgetMs, 'block.forgetMs'),
  }
}
