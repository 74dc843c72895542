/** The store keys of one subject under one policy, made once and cached by the Limiter. */
import type { BlockParams } from './core/block.js'
import type { StateHint, StoreOp } from './store/types.js'

export interface SubjectKeys {
  /**
   * Where the subject's counters live: one key holding the state of every limit whose state is a
   * number or two (token buckets, fixed and sliding windows). Its TTL is the longest time to full.
   */
  state: string
  /** One name per limit, in the order of `names`; sliding logs and concurrency leases (sorted sets in Redis) live under theirs. */
  limits: string[]
  alerts: string[]
  block: string
  strikes: string
  /** The subject's queue of waiting requests (WaitOptions), its keys named from this one. */
  queue: string
  /** @internal Where a MemoryStore found the state key last (see StateHint). */
  hint: StateHint
  /** @internal A charging op's alert and block parts, made once per subject, not per call. */
  alertOp: StoreOp['alert']
  blockOp: StoreOp['block']
}

/** The keys under `base` (`prefix{policy:subject}`), the state key's name ending in the policy's `layout`. */
export function subjectKeys(
  base: string,
  names: readonly string[],
  layout: string,
  alertAt: number | undefined,
  block: BlockParams | undefined,
): SubjectKeys {
  const alerts = names.map((n) => `${base}:${n}:alerted`)
  const blockKey = `${base}!block`
  const strikes = `${base}!strikes`
  return {
    state: `${base}#${layout}`,
    limits: names.map((n) => `${base}:${n}`),
    alerts,
    block: blockKey,
    strikes,
    queue: `${base}!queue`,
    hint: { owner: undefined, generation: 0, slot: undefined },
    alertOp: alertAt === undefined ? undefined : { threshold: alertAt, keys: alerts },
    blockOp: block && {
      params: block,
      key: blockKey,
      strikesKey: strikes,
      hint: { owner: undefined, generation: 0, slot: undefined },
    },
  }
}
