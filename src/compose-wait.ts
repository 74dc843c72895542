import type { ComposedDecision, Composite } from './compose.js'
import type { Decision } from './limiter.js'
import type { QueueBackend } from './store/queue-types.js'
import type { StoreOp } from './store/types.js'
import { type Attempt, abortError, decideWaiting, type ResolvedWait, waitable, withWait } from './waiting.js'

/**
 * A composed decision waiting in fair order (docs/queueing.md): every level's capacity has its
 * queue (the level's subject's queue key, in the composite's hash tag). The first try runs only
 * when no level's queue holds anybody; a refusal waits in the queue of the level that refused
 * (the one with the longest retry time), and the head of that queue tries the whole composed
 * decision again, admitted and charged on every level in one atomic step.
 */

/** A level refused: one of its own limits did, or it is blocked (the others only went along). */
const refused = (d: Decision) => d.blocked || d.limits.some((l) => !l.allowed)

/** Whether a composed refusal may wait: a rate limit of levels that allow waiting refused it. */
function canWait(composite: Composite, d: ComposedDecision): boolean {
  if (d.allowed || d.blocked || !d.verified || !Number.isFinite(d.retryAfterMs)) return false
  return d.levels.every(
    (level, i) => !refused(level) || (composite.levels[i]!.queue !== false && waitable(d, level.limits)),
  )
}

/** The refusing level whose capacity frees last (ties: the later, wider level), or undefined. */
function refusingLevel(d: ComposedDecision): number | undefined {
  let chosen: number | undefined
  d.levels.forEach((level, i) => {
    if (!refused(level)) return
    if (chosen === undefined || level.retryAfterMs >= d.levels[chosen]!.retryAfterMs) chosen = i
  })
  return chosen
}

/** A decision that would pass, refused because others wait on level `i`'s capacity. */
function queueRefusal(d: ComposedDecision, i: number): ComposedDecision {
  return { ...d, allowed: false, retryAfterMs: 1, deniedLevel: i, deniedBy: 'queue' }
}

/** The first non-empty queue among `keys`, or undefined when all are empty. */
async function waitedOn(backend: QueueBackend, keys: readonly string[]): Promise<number | undefined> {
  for (let i = 0; i < keys.length; i++) if ((await backend.length(keys[i]!)) > 0) return i
  return undefined
}

/**
 * Decides a composite's consume or reserve waiting as `wait` allows; `waitedMs` is set when the
 * request took a place in a queue.
 */
export async function decideComposedWaiting(
  composite: Composite,
  mode: 'consume' | 'reserve',
  costs: number[][],
  wait: ResolvedWait,
  id: string,
): Promise<ComposedDecision> {
  if (wait.signal?.aborted) throw abortError(wait.signal)
  const { levels, hashTag } = composite
  const backend = levels[0]!.limiter.queues()
  const keys = levels.map(({ limiter, subject }) => limiter.keysFor(subject, hashTag).queue)
  const opsOf = (m: 'consume' | 'reserve' | 'peek', guarded: boolean): StoreOp => {
    const ops = levels.map(({ limiter, subject }, i) => {
      const op = limiter.opFor(m, subject, costs[i]!, id, hashTag)
      if (guarded) op.guard = keys[i]
      return op
    })
    return ops.length === 1 ? ops[0]! : { ...ops[0]!, linked: ops.slice(1) }
  }
  // The first try runs only when nobody waits on any level's capacity: nobody is passed.
  const tried = await backend.first(opsOf(mode, true), keys[0]!)
  const attempt: Attempt<ComposedDecision> = {
    backend,
    key: keys[0]!,
    flow: levels[0]!.subject,
    op: opsOf(mode, false),
    peek: () => composite.executeOp(opsOf('peek', false), costs, false),
    read: (r) => composite.decisionOf(r, costs, true),
    canWait: (d) => canWait(composite, d),
    allowed: (d) => d.allowed,
    retryAfterMs: (d) => d.retryAfterMs,
    refusal: (d) => queueRefusal(d, 0),
    choose: async (d, passes) => {
      if (!passes) {
        const i = refusingLevel(d)
        return { key: i === undefined ? undefined : keys[i], refusal: d }
      }
      // It would pass, but somebody waits on one of its levels: wait behind them there.
      const i = await waitedOn(backend, keys)
      if (i === undefined) return { key: keys[0], refusal: queueRefusal(d, 0) }
      const refusal = queueRefusal(d, i)
      return { key: levels[i]!.queue === false ? undefined : keys[i], refusal }
    },
  }
  if (tried.kind === 'ran') {
    const d = attempt.read(tried.result)
    if (d.allowed || !canWait(composite, d) || d.retryAfterMs > wait.maxWaitMs) return d
  }
  return withWait(await decideWaiting(attempt, wait, tried))
}
