import { isInFlight } from '../core/limits.js'
import type { StoreOp, StoreResult } from './types.js'

/**
 * A call cut by its deadline was answered by the outage policy, so its client was told it was not
 * charged (a 503, an unchecked "open" pass, or a local decision). Redis may still run it later
 * (the deadline cuts the wait, not the command). This is the op that undoes such a late charge:
 * every cost refunded at the store time the charge was made, and a reservation's lease released.
 * Undefined when the late op charged nothing (denied, or not a charging op).
 */
export function refundOf(op: StoreOp, late: StoreResult): StoreOp | undefined {
  if (!late.allowed || (op.mode !== 'consume' && op.mode !== 'reserve')) return undefined
  if (op.linked !== undefined) {
    // A group: every part it charged, refunded together.
    const parts = [op, ...op.linked]
      .map((part) => refundOf({ ...part, linked: undefined }, { ...late, linked: undefined }))
      .filter((part): part is StoreOp => part !== undefined)
    if (parts.length === 0) return undefined
    return parts.length === 1 ? parts[0] : { ...parts[0]!, linked: parts.slice(1) }
  }
  const n = op.limits.length
  const costs: number[] = new Array(n)
  let charged = false
  let lease = false
  for (let i = 0; i < n; i++) {
    if (isInFlight(op.limits[i]!.kind)) {
      costs[i] = 0
      // Only a reservation holds a lease; consume needs a free slot but takes none.
      if (op.mode === 'reserve' && op.costs[i]! > 0) lease = true
    } else {
      costs[i] = -op.costs[i]!
      if (op.costs[i]! > 0) charged = true
    }
  }
  if (!charged && !lease) return undefined
  return {
    mode: 'adjust',
    id: op.id,
    stateKey: op.stateKey,
    keys: op.keys,
    names: op.names,
    limits: op.limits,
    costs,
    charged: op.costs,
    chargedAt: late.now,
    release: lease,
  }
}

export type RefundOutcome = 'ok' | 'error' | 'timeout'
