import type { Costs } from '../limiter.js'
import type { ResolvedSubject } from './subjects.js'

/** One limit of a subject as `sluice inspect` reports it. */
export interface InspectedLimit {
  name: string
  unit: string
  kind: string
  limit: number
  /** Left now (negative while in debt). */
  remaining: number
  /** Until the limit is full again. */
  resetMs: number
  windowSeconds: number
  /** Whether this limit would let the next call through (see NEXT_CALL). */
  allowed: boolean
}

/** A subject's state in one tier. */
export interface InspectedTier {
  /** The subject the tier counts (an IPv6 address's /64, a key's user…). */
  subject: string
  /** Whether a call now would be admitted: every limit has room for it and no block holds. */
  allowed: boolean
  /** 0 when allowed; else until such a call could pass (Infinity: never). */
  retryAfterMs: number
  /** The limit that would refuse it, or "block". */
  deniedBy: string | undefined
  blocked: boolean
  limits: InspectedLimit[]
}

/**
 * The smallest call the gateway makes: one request, one slot in flight, a token, a micro-dollar.
 * A limit with less than that left refuses the next call, whatever it is.
 */
const NEXT_CALL: Costs = { requests: 1, concurrent: 1, tokens: 1, usd: 0.000001 }
/** Reads the state as it is, charging nothing (a concurrency slot included). */
const NOTHING: Costs = { requests: 0, concurrent: 0 }

/** The state of every bucket of a resolved subject, charging nothing. */
export async function inspectSubject(resolved: ResolvedSubject): Promise<Record<string, InspectedTier>> {
  const out: Record<string, InspectedTier> = {}
  for (const { tier, subject, limiter } of resolved.targets) {
    const [now, next] = await Promise.all([limiter.peek(subject, NOTHING), limiter.peek(subject, NEXT_CALL)])
    out[tier] = {
      subject,
      allowed: next.allowed,
      retryAfterMs: next.retryAfterMs,
      deniedBy: next.deniedBy,
      blocked: now.blocked,
      limits: now.limits.map((l, i) => ({
        name: l.name,
        unit: l.unit,
        kind: l.kind,
        limit: l.limit,
        remaining: l.remaining,
        resetMs: l.resetMs,
        windowSeconds: l.windowSeconds,
        allowed: next.limits[i]?.allowed ?? false,
      })),
    }
  }
  return out
}
