import { algorithmOf, type LimitDefinition } from '../../core/algorithms/index.js'
import type { BlockParams } from '../../core/block.js'
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

/** A mode's header letter: [code][guarded][joined with the next op]; only c and r are guarded. */
const MODES: Record<string, readonly [readonly [string, string], readonly [string, string]]> = {}
for (const code of [...Object.values(MODE_CODES), 'A']) {
  const guarded = code === 'c' || code === 'r' ? code.toUpperCase() : code
  MODES[code] = [
    [code, `${code}+`],
    [guarded, `${guarded}+`],
  ]
}

export class StoreScriptError extends Error {
  override name = 'StoreScriptError'
}

/**
 * The string lua/queue.lua keeps beside a queue while anyone waits in it (same hash tag, same
 * expiry): a guarded op reads it in the batch's MGET instead of asking for the queue itself.
 */
export function queueMarkerKey(queueKey: string): string {
  let marker = markers.get(queueKey)
  if (marker === undefined) {
    // One flat string per queue, reused: a new one per op would be built and copied each call.
    marker = `${queueKey}:on`
    if (markers.size >= MARKER_CACHE_SIZE) markers.clear()
    markers.set(queueKey, marker)
  }
  return marker
}

/**
 * The string lua/busy.lua keeps on one Redis: the queues that hold tickets, read by a batch of
 * guarded ops in place of one marker key each. Not on a Redis Cluster (one key has one slot).
 */
export const QUEUES_BUSY_KEY = 'sluice:queues:busy'

const MARKER_CACHE_SIZE = 10_000
const markers = new Map<string, string>()

export interface EncodedBatch {
  /**
   * Every op's state key (in op order), then the block keys, the guard keys, then the ops' other
   * keys; or, when a key repeats, each key once (in that order of first use) and a map of them.
   */
  keys: string[]
  /** Policies first, then ops. */
  args: (string | number)[]
}

/**
 * A batch's keys repeat when ops share a subject (every request of one client: one state, block,
 * alert and strikes key), and its ops' arguments when they share a mode and cost (every op of one
 * Limiter): each repeat would become a Redis string and a Lua string of its own, and each key a
 * lookup of the MGET. The script gets each key once and a map naming, for every place of the full
 * layout, which key fills it; and each op's arguments once, a map naming where each op's start.
 * Both maps: two characters a place, a 1-based index in base 94 from '!' (low digit first). See
 * apply.lua.
 */
const MAP_BASE = 94
/** Past this many distinct values a map cannot name them: the values go as they are. */
const MAP_MAX = MAP_BASE * MAP_BASE
/** The two characters of each index, made once. */
const indexCodes: string[] = ['']
function indexCode(i: number): string {
  for (let k = indexCodes.length; k <= i; k++) {
    indexCodes.push(String.fromCharCode(33 + ((k - 1) % MAP_BASE), 33 + Math.floor((k - 1) / MAP_BASE)))
  }
  return indexCodes[i]!
}

/** Reused from batch to batch (no table made per call): each place's index, and the index by value. */
const placeIndex: number[] = []
const indexOf = new Map<string | number, number>()

/**
 * `values` as the script reads them: each distinct value once, in order of first use, and the map
 * of places; the values as they are and an empty map when none repeats (or too many are distinct).
 */
function shareRepeats<T extends string | number>(values: T[]): { values: T[]; map: string } {
  if (values.length < 2) return { values, map: '' }
  const distinct: T[] = []
  for (let p = 0; p < values.length; p++) {
    const v = values[p]!
    let i = indexOf.get(v)
    if (i === undefined) {
      distinct.push(v)
      i = distinct.length
      indexOf.set(v, i)
    }
    placeIndex[p] = i
  }
  indexOf.clear()
  if (distinct.length === values.length || distinct.length > MAP_MAX) return { values, map: '' }
  let map = ''
  for (let p = 0; p < values.length; p++) map += indexCode(placeIndex[p]!)
  return { values: distinct, map }
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

/** A policy as the script reads it: one argument (see apply.lua's ARGV), and whether its ops carry ids. */
interface PolicyShape {
  text: string
  ids: boolean
}

/**
 * Each policy's text, built once per Limiter (its limits array and block settings are kept as
 * they are): the script parses a text the first time it sees it and looks it up after that.
 */
const shapes = new WeakMap<readonly LimitDefinition[], Map<BlockParams | undefined, PolicyShape>>()

function policyShape(limits: readonly LimitDefinition[], block: BlockParams | undefined): PolicyShape {
  let byBlock = shapes.get(limits)
  if (byBlock === undefined) {
    byBlock = new Map()
    shapes.set(limits, byBlock)
  }
  let shape = byBlock.get(block)
  if (shape === undefined) {
    const ids = limits.some((l) => algorithmOf(l.kind).needsOpId)
    const fields: (string | number)[] = [limits.length, block ? 1 : 0, ids ? 1 : 0]
    if (block) {
      fields.push(block.after, block.withinMs, block.forgetMs, block.durationsMs.length, ...block.durationsMs)
    }
    for (const limit of limits) {
      const algorithm = algorithmOf(limit.kind)
      const params = algorithm.lua.params(limit)
      fields.push(limit.kind, algorithm.packed?.width ?? 0, params.length, ...params)
    }
    shape = { text: fields.join(' '), ids }
    // A caller that builds new block settings per op for the same limits: kept bounded.
    if (byBlock.size >= 16) byBlock.clear()
    byBlock.set(block, shape)
  }
  return shape
}

/**
 * Encodes ops for one script call. Ops of the same policy (same limit definitions and block
 * settings, as one Limiter sends) share one policy entry, so the script parses each policy once;
 * an op is a header naming its mode, policy and alert threshold (which the script parses once per
 * batch), then only the fields its mode and policy use.
 */
export function encodeBatch(
  ops: readonly StoreOp[],
  joined?: readonly boolean[],
  busyKey?: string,
): EncodedBatch {
  const policyArgs: (string | number)[] = [0]
  const policies: EncodedPolicy[] = []
  // nOps, nBlockKeys, nGuardKeys; then each op's own arguments.
  const counts: number[] = [ops.length, 0, 0]
  const opArgs: (string | number)[] = []
  const keys: string[] = new Array(ops.length)
  // Where each op's arguments start in opArgs, and where each distinct run of them starts.
  const opStarts: number[] = new Array(ops.length)
  const opLengths: number[] = new Array(ops.length)
  const tupleStarts: number[] = []
  let repeated = false
  let j = 0
  let guarded = false
  // On a cluster (no busy string): each guarded op's queue marker, in op order.
  const guardKeys: string[] = []
  for (const op of ops) {
    const joinedNext = joined?.[j] === true
    const block = op.block?.params
    let index = policies.findIndex((p) => p.limits === op.limits && p.block === block)
    if (index < 0) {
      index = policies.length
      const shape = policyShape(op.limits, block)
      policies.push({ limits: op.limits, block, ids: shape.ids, headers: new Map() })
      policyArgs.push(shape.text)
    }
    const policy = policies[index]!
    const adjusting = op.mode === 'adjust'
    // '+': decided together with the next op (the op's next part).
    // Upper case: a consume or reserve guarded by a queue key (StoreOp.guard).
    const code = adjusting && op.release ? 'A' : MODE_CODES[op.mode]
    // Constant strings: a mode built per op would be a new string to hash in the header map.
    const guard = op.guard !== undefined && (code === 'c' || code === 'r')
    if (guard) {
      guarded = true
      if (busyKey === undefined) guardKeys.push(queueMarkerKey(op.guard!))
    }
    const mode = MODES[code]![guard ? 1 : 0][joinedNext ? 1 : 0]
    const threshold = op.alert?.threshold
    let cached = policy.headers.get(mode)
    if (cached === undefined || cached.threshold !== threshold) {
      const header = threshold === undefined ? `${mode}${index + 1}` : `${mode}${index + 1}:${threshold}`
      cached = { threshold, header }
      policy.headers.set(mode, cached)
    }
    const start = opArgs.length
    opArgs.push(cached.header)
    if (policy.ids) opArgs.push(op.id)
    if (adjusting) opArgs.push(op.chargedAt ?? '')
    const n = op.limits.length
    keys[j] = op.stateKey
    for (let i = 0; i < n; i++) opArgs.push(op.costs[i]!)
    if (adjusting) for (let i = 0; i < n; i++) opArgs.push(op.charged?.[i] ?? 0)
    // The same arguments as an op before it (one Limiter's ops at the same cost): sent once.
    opLengths[j] = opArgs.length - start
    const same = sameTuple(opArgs, start, tupleStarts)
    if (same < 0) {
      tupleStarts.push(start)
      opStarts[j] = start
    } else {
      opArgs.length = start
      opStarts[j] = same
      repeated = true
    }
    j++
  }
  let blocks = 0
  for (const op of ops) {
    if (op.block) {
      keys.push(op.block.key)
      blocks++
    }
  }
  counts[1] = blocks
  if (guarded && busyKey !== undefined) {
    // One key for the batch: the list of queues that hold tickets (lua/busy.lua).
    keys.push(busyKey)
    counts[2] = -1
  } else {
    for (const marker of guardKeys) keys.push(marker)
    counts[2] = guardKeys.length
  }
  for (const op of ops) {
    const n = op.limits.length
    for (let i = 0; i < n; i++) {
      if (algorithmOf(op.limits[i]!.kind).packed === undefined) keys.push(op.keys[i]!)
    }
    if (op.alert) for (let i = 0; i < n; i++) keys.push(op.alert.keys[i]!)
    if (op.block) keys.push(op.block.strikesKey)
  }
  policyArgs[0] = policies.length
  policyArgs.push(counts[0]!, counts[1]!, counts[2]!)
  const shared = shareRepeats(keys)
  let opMap = ''
  if (repeated && opArgs.length <= MAP_MAX) {
    for (const at of opStarts) opMap += indexCode(at + 1)
    policyArgs.push(shared.map, opMap)
    for (const a of opArgs) policyArgs.push(a)
  } else {
    // None repeats, or too many places for a map to name: every op's arguments as they are.
    policyArgs.push(shared.map, opMap)
    for (let k = 0; k < ops.length; k++) {
      const at = opStarts[k]!
      for (let a = at; a < at + opLengths[k]!; a++) policyArgs.push(opArgs[a]!)
    }
  }
  return { keys: shared.values, args: policyArgs }
}

/** How many earlier runs of arguments an op's are compared with (one Limiter's ops repeat the last). */
const TUPLES_COMPARED = 8

/**
 * Where an earlier op's arguments equal args[start..] (the op just pushed), or -1: the most recent
 * runs compared, value by value.
 */
function sameTuple(args: (string | number)[], start: number, starts: number[]): number {
  const length = args.length - start
  const from = starts.length > TUPLES_COMPARED ? starts.length - TUPLES_COMPARED : 0
  for (let t = starts.length - 1; t >= from; t--) {
    const at = starts[t]!
    const end = t + 1 < starts.length ? starts[t + 1]! : start
    if (end - at !== length) continue
    let k = 0
    while (k < length && args[at + k] === args[start + k]) k++
    if (k === length) return at
  }
  return -1
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
    const result: StoreResult = {
      now,
      allowed: (status & 1) === 1,
      blockedMs,
      blockedNow: (status & 2) === 2,
      limits,
    }
    if (status === 4) result.waiting = true
    out[j] = result
  }
  return out
}

/**
 * The parts the script decides, in order: each op, then the ops decided with it (StoreOp.linked),
 * every part but the last of an op marked as joined to the next.
 */
export function flattenOps(ops: readonly StoreOp[]): { parts: readonly StoreOp[]; joined?: boolean[] } {
  if (!ops.some((op) => op.linked !== undefined)) return { parts: ops }
  const parts: StoreOp[] = []
  const joined: boolean[] = []
  for (const op of ops) {
    parts.push(op)
    joined.push(op.linked !== undefined && op.linked.length > 0)
    if (op.linked === undefined) continue
    for (let k = 0; k < op.linked.length; k++) {
      parts.push(op.linked[k]!)
      joined.push(k < op.linked.length - 1)
    }
  }
  return { parts, joined }
}

/** The results of the flattened parts, back as one result (with its linked results) per op. */
export function regroup(ops: readonly StoreOp[], results: (StoreResult | Error)[]): (StoreResult | Error)[] {
  if (results.length === ops.length) return results
  const out: (StoreResult | Error)[] = new Array(ops.length)
  let at = 0
  for (let j = 0; j < ops.length; j++) {
    const head = results[at++]!
    const linked = ops[j]!.linked
    if (linked === undefined) {
      out[j] = head
      continue
    }
    const rest = results.slice(at, at + linked.length)
    at += linked.length
    const failed = [head, ...rest].find((r) => r instanceof Error)
    out[j] = failed ?? { ...(head as StoreResult), linked: rest as StoreResult[] }
  }
  return out
}
