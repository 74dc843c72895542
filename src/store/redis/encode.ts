import type { LimitDefinition } from '../../core/limits.js'
import type { LimitResult, StoreOp, StoreResult } from '../types.js'

const MODE_CODES = {
  consume: 'c',
  reserve: 'r',
  adjust: 'a',
  peek: 'p',
  reset: 'x',
  unblock: 'u',
} as const

function limitArgs(limit: LimitDefinition): [string, number, number] {
  switch (limit.kind) {
    case 'tokenBucket':
      return ['b', limit.capacity, limit.intervalMs]
    case 'fixedWindow':
      return ['f', limit.limit, limit.windowMs]
    case 'slidingWindow':
      return ['s', limit.limit, limit.windowMs]
    case 'slidingLog':
      return ['l', limit.limit, limit.windowMs]
    case 'concurrency':
      return ['c', limit.limit, limit.leaseMs]
  }
}

/** Appends one op's keys and arguments in the layout apply.lua reads. */
export function encodeOp(op: StoreOp, keys: string[], args: (string | number)[]): void {
  const adjusting = op.mode === 'adjust'
  const mode = adjusting && op.release ? 'A' : MODE_CODES[op.mode]
  const n = op.limits.length
  args.push(mode, op.id, op.chargedAt ?? '', n, op.alert ? op.alert.threshold : '')
  if (op.block) {
    const p = op.block.params
    args.push('1', p.after, p.withinMs, p.forgetMs, p.durationsMs.length, ...p.durationsMs)
  } else {
    args.push('0')
  }
  for (let i = 0; i < n; i++) {
    const [kind, a, b] = limitArgs(op.limits[i]!)
    args.push(kind, a, b, op.costs[i]!)
    if (adjusting) args.push(op.charged?.[i] ?? 0)
    keys.push(op.keys[i]!)
  }
  if (op.alert) for (let i = 0; i < n; i++) keys.push(op.alert.keys[i]!)
  if (op.block) keys.push(op.block.key, op.block.strikesKey)
}

export class StoreScriptError extends Error {
  override name = 'StoreScriptError'
}

/** Parses one op's reply string; throws the script's error for that op. */
export function decodeResult(now: number, reply: string): StoreResult {
  if (reply.startsWith('E:')) throw new StoreScriptError(`Redis script failed: ${reply.slice(2)}`)
  const f = reply.split(',')
  const limits: LimitResult[] = []
  for (let i = 3; i < f.length; i += 5) {
    limits.push({
      allowed: f[i] === '1',
      remaining: Number(f[i + 1]),
      resetMs: Number(f[i + 2]),
      retryAfterMs: Number(f[i + 3]),
      alerted: f[i + 4] === '1',
    })
  }
  return { now, allowed: f[0] === '1', blockedMs: Number(f[1]), blockedNow: f[2] === '1', limits }
}
