import type { BlockParams } from '../../core/block.js'
import type { LimitDefinition } from '../../core/limits.js'
import type { LimitResult, StoreOp, StoreResult } from '../types.js'

/** The layout apply.lua reads; see the comment at its top. */

const MODE_CODES = {
  consume: 'c',
  reserve: 'r',
  adjust: 'a',
  peek: 'p',
  reset: 'x',
  unblock: 'u',
} as const

const KIND_CODES = {
  tokenBucket: 'b',
  fixedWindow: 'f',
  slidingWindow: 's',
  slidingLog: 'l',
  concurrency: 'c',
} as const

function limitParams(limit: LimitDefinition): [number, number] {
  switch (limit.kind) {
    case 'tokenBucket':
      return [limit.capacity, limit.intervalMs]
    case 'concurrency':
      return [limit.limit, limit.leaseMs]
    default:
      return [limit.limit, limit.windowMs]
  }
}

export class StoreScriptError extends Error {
  override name = 'StoreScriptError'
}

export interface EncodedBatch {
  keys: string[]
  /** Policies first, then ops. */
  args: (string | number)[]
}

/**
 * Encodes ops for one script call. Ops of the same policy (same limit definitions and block
 * settings, as one Limiter sends) share one policy entry, so the script parses each policy once.
 */
export function encodeBatch(ops: readonly StoreOp[]): EncodedBatch {
  const policyArgs: (string | number)[] = [0]
  const policies: { limits: readonly LimitDefinition[]; block: BlockParams | undefined }[] = []
  const opArgs: (string | number)[] = [ops.length]
  const keys: string[] = []
  for (const op of ops) {
    const block = op.block?.params
    let index = policies.findIndex((p) => p.limits === op.limits && p.block === block)
    if (index < 0) {
      index = policies.length
      policies.push({ limits: op.limits, block })
      policyArgs.push(op.limits.length)
      if (block)
        policyArgs.push(
          '1',
          block.after,
          block.withinMs,
          block.forgetMs,
          block.durationsMs.length,
          ...block.durationsMs,
        )
      else policyArgs.push('0')
      for (const limit of op.limits) policyArgs.push(KIND_CODES[limit.kind], ...limitParams(limit))
    }
    const adjusting = op.mode === 'adjust'
    const mode = adjusting && op.release ? 'A' : MODE_CODES[op.mode]
    opArgs.push(mode, op.id, op.chargedAt ?? '', index + 1, op.alert ? op.alert.threshold : '')
    const n = op.limits.length
    keys.push(op.stateKey)
    for (let i = 0; i < n; i++) {
      opArgs.push(op.costs[i]!)
      const kind = op.limits[i]!.kind
      if (kind === 'slidingLog' || kind === 'concurrency') keys.push(op.keys[i]!)
    }
    if (adjusting) for (let i = 0; i < n; i++) opArgs.push(op.charged?.[i] ?? 0)
    if (op.alert) for (let i = 0; i < n; i++) keys.push(op.alert.keys[i]!)
    if (op.block) keys.push(op.block.key, op.block.strikesKey)
  }
  policyArgs[0] = policies.length
  for (const a of opArgs) policyArgs.push(a)
  return { keys, args: policyArgs }
}

/** Splits the script's reply into one result (or error) per op, in order. */
export function decodeBatch(reply: readonly unknown[], ops: readonly StoreOp[]): (StoreResult | Error)[] {
  const now = Number(reply[0]) / 1000
  const out: (StoreResult | Error)[] = []
  let at = 1
  for (const op of ops) {
    const n = op.limits.length
    const status = reply[at]
    if (typeof status === 'string') {
      out.push(new StoreScriptError(`Redis script failed: ${status.slice(2)}`))
      at += 2 + 4 * n
      continue
    }
    const code = Number(status)
    const blockedMs = Number(reply[at + 1])
    at += 2
    const limits: LimitResult[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const flags = Number(reply[at])
      const rem = reply[at + 1]
      const retry = Number(reply[at + 3])
      limits[i] = {
        allowed: (flags & 1) === 1,
        remaining: typeof rem === 'string' ? Number(rem) : Number(rem) / 1e6,
        resetMs: Number(reply[at + 2]),
        retryAfterMs: retry < 0 ? Number.POSITIVE_INFINITY : retry,
        alerted: (flags & 2) === 2,
      }
      at += 4
    }
    out.push({ now, allowed: (code & 1) === 1, blockedMs, blockedNow: (code & 2) === 2, limits })
  }
  return out
}
