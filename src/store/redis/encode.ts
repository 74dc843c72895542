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
  /** Every op's state key (in op order), then the block keys, then the ops' other keys. */
  keys: string[]
  /** Policies first, then ops. */
  args: (string | number)[]
}

interface EncodedPolicy {
  limits: readonly LimitDefinition[]
  block: BlockParams | undefined
  /** The policy has a sliding log or concurrency limit: its ops carry their id. */
  ids: boolean
  /**
   * Op headers by mode, with the alert threshold they were built for (one Limiter always sends the
   * same one): built once per batch, not once per op.
   */
  headers: Map<string, { threshold: number | undefined; header: string }>
}

/**
 * Encodes ops for one script call. Ops of the same policy (same limit definitions and block
 * settings, as one Limiter sends) share one policy entry, so the script parses each policy once;
 * an op is a header naming its mode, policy and alert threshold (which the script parses once per
 * batch), then only the fields its mode and policy use.
 */
export function encodeBatch(ops: readonly StoreOp[]): EncodedBatch {
  const policyArgs: (string | number)[] = [0]
  const policies: EncodedPolicy[] = []
  const opArgs: (string | number)[] = [ops.length, 0]
  const keys: string[] = new Array(ops.length)
  let j = 0
  for (const op of ops) {
    const block = op.block?.params
    let index = policies.findIndex((p) => p.limits === op.limits && p.block === block)
    if (index < 0) {
      index = policies.length
      policies.push({
        limits: op.limits,
        block,
        ids: op.limits.some((l) => l.kind === 'slidingLog' || l.kind === 'concurrency'),
        headers: new Map(),
      })
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
    const policy = policies[index]!
    const adjusting = op.mode === 'adjust'
    const mode = adjusting && op.release ? 'A' : MODE_CODES[op.mode]
    const threshold = op.alert?.threshold
    let cached = policy.headers.get(mode)
    if (cached === undefined || cached.threshold !== threshold) {
      const header = threshold === undefined ? `${mode}${index + 1}` : `${mode}${index + 1}:${threshold}`
      cached = { threshold, header }
      policy.headers.set(mode, cached)
    }
    opArgs.push(cached.header)
    if (policy.ids) opArgs.push(op.id)
    if (adjusting) opArgs.push(op.chargedAt ?? '')
    const n = op.limits.length
    keys[j++] = op.stateKey
    for (let i = 0; i < n; i++) opArgs.push(op.costs[i]!)
    if (adjusting) for (let i = 0; i < n; i++) opArgs.push(op.charged?.[i] ?? 0)
  }
  let blocks = 0
  for (const op of ops) {
    if (op.block) {
      keys.push(op.block.key)
      blocks++
    }
  }
  opArgs[1] = blocks
  for (const op of ops) {
    const n = op.limits.length
    for (let i = 0; i < n; i++) {
      const kind = op.limits[i]!.kind
      if (kind === 'slidingLog' || kind === 'concurrency') keys.push(op.keys[i]!)
    }
    if (op.alert) for (let i = 0; i < n; i++) keys.push(op.alert.keys[i]!)
    if (op.block) keys.push(op.block.strikesKey)
  }
  policyArgs[0] = policies.length
  for (const a of opArgs) policyArgs.push(a)
  return { keys, args: policyArgs }
}

/**
 * Splits the script's reply (binary results, then error messages) into one result (or error) per
 * op, in order. The results are little-endian doubles: nothing is formatted or parsed as text.
 */
export function decodeBatch(reply: readonly unknown[], ops: readonly StoreOp[]): (StoreResult | Error)[] {
  const results = reply[0]
  if (!Buffer.isBuffer(results)) throw new StoreScriptError('Redis script replied without its results')
  const now = results.readDoubleLE(0)
  const out: (StoreResult | Error)[] = new Array(ops.length)
  let at = 8
  for (let j = 0; j < ops.length; j++) {
    const n = ops[j]!.limits.length
    const status = results.readDoubleLE(at)
    if (status < 0) {
      out[j] = new StoreScriptError(`Redis script failed: ${String(reply[-status])}`)
      at += 16 + 32 * n
      continue
    }
    const blockedMs = results.readDoubleLE(at + 8)
    at += 16
    const limits: LimitResult[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const flags = results.readDoubleLE(at)
      limits[i] = {
        allowed: (flags & 1) === 1,
        remaining: results.readDoubleLE(at + 8),
        resetMs: results.readDoubleLE(at + 16),
        retryAfterMs: results.readDoubleLE(at + 24),
        alerted: (flags & 2) === 2,
      }
      at += 32
    }
    out[j] = { now, allowed: (status & 1) === 1, blockedMs, blockedNow: (status & 2) === 2, limits }
  }
  return out
}
