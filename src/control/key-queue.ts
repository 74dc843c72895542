import { parseDuration } from '../gateway/config/values.js'
import { ControlInputError } from './errors.js'

/**
 * A key's queue settings over its tier's (docs/queueing.md): each field given replaces the
 * tier's; `maxWait: 0` turns waiting off for the key. Stored and returned with `maxWait` in
 * milliseconds.
 */
export interface KeyQueue {
  /** Longest wait, ms (0: the key never waits). */
  maxWait?: number
  /** Most requests waiting on one capacity. */
  maxQueued?: number
  /** Most requests of this key's subject waiting on one capacity. */
  maxQueuedPerSubject?: number
  /** The key's share when several wait on one capacity. */
  weight?: number
}

const FIELDS = ['maxWait', 'maxQueued', 'maxQueuedPerSubject', 'weight'] as const
/** An hour: longer waits are a mistake (a client or proxy would have given up long before). */
const MAX_WAIT_MS = 3_600_000
function waitMs(value: unknown, field: string): number {
  const ms = typeof value === 'number' || typeof value === 'string' ? parseDuration(value) : undefined
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || ms > MAX_WAIT_MS) {
    throw new ControlInputError(
      field,
      `must be milliseconds from 0 to ${MAX_WAIT_MS} or a duration such as "2s" or "500ms"`,
      value,
    )
  }
  return Math.round(ms)
}

function wholeCount(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ControlInputError(field, 'must be a whole number ≥ 1', value)
  }
  return value
}

/** The settings checked and serialised for the `queue` column; undefined / null pass through. */
export function keyQueueText(value: unknown, field: string): string | null | undefined {
  if (value === undefined || value === null) return value
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ControlInputError(field, 'must be an object such as { "maxWait": "2s" }, or null', value)
  }
  const input = value as Record<string, unknown>
  const out: KeyQueue = {}
  for (const name of Object.keys(input)) {
    if (!(FIELDS as readonly string[]).includes(name)) {
      throw new ControlInputError(
        `${field}.${name.slice(0, 64)}`,
        `is not a queue field (${FIELDS.join(', ')})`,
      )
    }
  }
  if (input.maxWait !== undefined) out.maxWait = waitMs(input.maxWait, `${field}.maxWait`)
  if (input.maxQueued !== undefined) out.maxQueued = wholeCount(input.maxQueued, `${field}.maxQueued`)
  if (input.maxQueuedPerSubject !== undefined) {
    out.maxQueuedPerSubject = wholeCount(input.maxQueuedPerSubject, `${field}.maxQueuedPerSubject`)
  }
  if (input.weight !== undefined) {
    const w = input.weight
    if (typeof w !== 'number' || !Number.isFinite(w) || w <= 0 || w > 1000) {
      throw new ControlInputError(`${field}.weight`, 'must be a number above 0, at most 1000', w)
    }
    out.weight = w
  }
  if (Object.keys(out).length === 0) {
    throw new ControlInputError(field, `must name at least one of ${FIELDS.join(', ')} (null: the tier's)`)
  }
  return JSON.stringify(out)
}
