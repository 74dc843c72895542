import {
  type Algorithm,
  algorithmOf,
  type LimitDefinition,
  type PackedState,
} from '../core/algorithms/index.js'

/**
 * How MemoryStore lays a subject's state out in memory, and what each entry costs.
 *
 * A subject's token buckets and windows share one array of doubles under its state key (as in
 * Redis, where they share one string of packed doubles): slot 0 is the entry's expiry, then each
 * such limit's numbers in order. Zeros stand for a full limit. The state key's name carries the
 * policy's limit names and kinds (the Limiter's layout signature), so one key always holds one
 * layout. Sliding logs and concurrency leases vary in size: while a subject has any, they are kept
 * beside its numbers (Mixed), so that one lookup finds all of a subject's state.
 */

// biome-ignore lint/suspicious/noExplicitAny: a policy mixes algorithms of every state type
type AnyAlgorithm = Algorithm<LimitDefinition, any, any>

export interface Layout {
  /** Per limit: its algorithm (read once per policy, not once per call). */
  algorithms: AnyAlgorithm[]
  /** Per limit: where its numbers start in the packed array, or -1 when it lives under its own key. */
  offsets: number[]
  codecs: (PackedState<unknown> | undefined)[]
  /** Per limit: its codec is `plain` (one number, 0 for none), read and written in place. */
  plain: boolean[]
  /** Length of the packed array (expiry included); 1 when every limit lives under its own key. */
  length: number
  /**
   * Every limit is packed and can be checked on its numbers in place (Algorithm.checkPacked):
   * MemoryStore decides consume, reserve and peek on the numbers, with no state objects or Steps.
   */
  inPlace: boolean
  /** Per limit: its algorithm's checkPacked (read once per policy; set for every limit when inPlace). */
  checks: (AnyAlgorithm['checkPacked'] | undefined)[]
  /** Per limit: how many numbers it keeps (0 under its own key). */
  widths: number[]
  /** A state of all zeros (every limit full), read in place of a subject with none. Never written. */
  zeros: readonly number[]
  /**
   * Scratch for the in-place checks: the numbers an admitted charge replaced, at the limit's
   * offsets, put back when another limit denies. Read only within the decision that wrote it
   * (decisions never run re-entrantly), so one per layout will do.
   */
  saved: number[]
  /** Scratch: a copy of a subject's numbers for the checks of an op that charges nothing (peek, blocked). */
  scratch: number[]
}

const layouts = new WeakMap<readonly LimitDefinition[], Layout>()

/** The layout of a policy's limits (computed once per limits array). */
export function layoutOf(limits: readonly LimitDefinition[]): Layout {
  let layout = layouts.get(limits)
  if (layout === undefined) {
    let at = 1
    const offsets: number[] = []
    const codecs: (PackedState<unknown> | undefined)[] = []
    const algorithms: AnyAlgorithm[] = []
    const plain: boolean[] = []
    const checks: (AnyAlgorithm['checkPacked'] | undefined)[] = []
    const widths: number[] = []
    let inPlace = true
    for (const limit of limits) {
      const algorithm = algorithmOf(limit.kind)
      const codec = algorithm.packed
      algorithms.push(algorithm)
      codecs.push(codec)
      plain.push(codec?.plain === true && codec.width === 1)
      offsets.push(codec === undefined ? -1 : at)
      widths.push(codec?.width ?? 0)
      checks.push(algorithm.checkPacked)
      if (codec === undefined || algorithm.checkPacked === undefined) inPlace = false
      at += codec?.width ?? 0
    }
    // Not frozen: V8's optimized code reads a frozen array's elements through a generic IC.
    const zeros = new Array<number>(at).fill(0)
    layout = {
      algorithms,
      offsets,
      codecs,
      plain,
      length: at,
      inPlace,
      checks,
      widths,
      zeros,
      saved: new Array<number>(at).fill(0),
      scratch: new Array<number>(at).fill(0),
    }
    layouts.set(limits, layout)
  }
  return layout
}

/** A value under its own key (log, leases, block, strikes), with its expiry and its cost in bytes. */
export class Boxed {
  constructor(
    public value: unknown,
    public expiresAt: number,
    /** The entry's estimated heap bytes apart from the value: map slot, key and box. */
    readonly boxBytes: number,
    /** The value's estimated heap bytes. */
    public valueBytes: number,
  ) {}
}

/** A subject's state while it has logs or leases: the packed numbers, and those per limit. */
export class Mixed {
  constructor(
    readonly nums: number[],
    /** Per limit: its log or lease set (undefined for the packed limits, and for empty ones). */
    readonly extra: unknown[],
    /** The bytes of the same entry without logs and leases (packedBytes). */
    readonly baseBytes: number,
    /** The entry's estimated heap bytes, key and map slot included. */
    public bytes: number,
  ) {}
}

/** What a key holds: packed numbers (slot 0 the expiry), packed numbers with logs and leases, or a boxed value. */
export type Slot = number[] | Mixed | Boxed

export function expiryOf(slot: Slot): number {
  if (Array.isArray(slot)) return slot[0]!
  return slot instanceof Mixed ? slot.nums[0]! : slot.expiresAt
}

// Heap sizes on 64-bit V8 without pointer compression (Node's default), in bytes. They were
// checked against process.memoryUsage() in bench/workers/memory-heap.ts: the store's accounting
// stays above the heap it really uses (see docs/performance.md).

/** A Map entry: key, value and chain pointers, a bucket, and room the table keeps for growth. */
const MAP_SLOT = 56
/** A string's header (map, hash, length). */
const STRING_HEADER = 16
/** A JS array and the header of its elements store. */
const ARRAY = 32 + 16
/** A plain object with a few fields, each boxed number included. */
const SMALL_OBJECT = 80
/** A Map object with its smallest hash table. */
const MAP_OBJECT = 200
/** An op id (the lease's or log entry's name): a string of up to 20 characters. */
const ID = STRING_HEADER + 24
/** A lease: its map entry, its id and its boxed expiry. */
const LEASE = 80 + ID
/** A log entry: an object { at, id, cost } with boxed numbers, its id and its array slot. */
const LOG_ENTRY = 120 + ID

const round8 = (n: number) => Math.ceil(n / 8) * 8

/** A string's heap bytes: one byte a character when every character fits in Latin-1, else two. */
export function stringBytes(s: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the Latin-1 range starts at U+0000
  const wide = /[^\u0000-\u00ff]/.test(s)
  return STRING_HEADER + round8(wide ? s.length * 2 : s.length)
}

/** An entry of packed numbers: map slot, key, array. */
export function packedBytes(key: string, length: number): number {
  return MAP_SLOT + stringBytes(key) + ARRAY + 8 * length
}

/** What logs and leases add to a state entry: the box, the per-limit array, the values. */
export function extraBytes(extra: readonly unknown[]): number {
  let values = 0
  for (const value of extra) if (value !== undefined) values += valueBytes(value)
  return SMALL_OBJECT + ARRAY + 8 * extra.length + values
}

/** An entry holding a boxed value, apart from the value: map slot, key, box. */
export function boxBytes(key: string): number {
  return MAP_SLOT + stringBytes(key) + SMALL_OBJECT
}

/** A boxed value: a lease map, a log (ids are op ids), a block or strike record. */
export function valueBytes(value: unknown): number {
  if (value instanceof Map) return MAP_OBJECT + value.size * LEASE
  if (Array.isArray(value)) return ARRAY + value.length * LOG_ENTRY
  return SMALL_OBJECT
}
