/**
 * Temporary blocks for subjects that keep getting denied: `after` denials within `withinMs` block
 * the subject for the next duration in `durationsMs` (1 min, 5 min, …). The level is remembered
 * until `forgetMs` after the block ends, so a repeat offender gets the next, longer block.
 */
export interface BlockParams {
  after: number
  withinMs: number
  durationsMs: readonly number[]
  forgetMs: number
}

export interface BlockState {
  until: number
  level: number
}

/** Denials counted since `since`; they stop counting `withinMs` after the first. */
export interface StrikeState {
  count: number
  since: number
}

export function blockedForMs(block: BlockState | undefined, now: number): number {
  return block !== undefined && block.until > now ? block.until - now : 0
}

export function blockTtlMs(block: BlockState, now: number, p: BlockParams): number {
  return block.until + p.forgetMs - now
}

export function strikeTtlMs(strikes: StrikeState, now: number, p: BlockParams): number {
  return strikes.since + p.withinMs - now
}

export interface StrikeOutcome {
  /** undefined once the strikes turned into a block. */
  strikes: StrikeState | undefined
  block: BlockState | undefined
  blockedNow: boolean
}

/** Records one denial; the `after`-th within the window starts the next block level. */
export function strike(
  strikes: StrikeState | undefined,
  block: BlockState | undefined,
  now: number,
  p: BlockParams,
): StrikeOutcome {
  const live = strikes !== undefined && strikes.since + p.withinMs > now ? strikes : { count: 0, since: now }
  const count = live.count + 1
  if (count < p.after) return { strikes: { count, since: live.since }, block, blockedNow: false }
  const level = Math.min((block?.level ?? 0) + 1, p.durationsMs.length)
  return { strikes: undefined, block: { until: now + p.durationsMs[level - 1]!, level }, blockedNow: true }
}
