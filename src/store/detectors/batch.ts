/**
 * Detector steps issued in the same event-loop turn go to Redis as one script call (lua/batch.lua)
 * instead of one round trip each: on a cluster, one call per hash slot (a subject's keys share its
 * hash tag; every failed key's step shares `{stuffing}`), at most MAX_BATCH steps a call. Each
 * step is still decided alone and atomically, in the order it was issued; its reply goes back to
 * its caller, and a step that fails rejects only its own caller.
 *
 * A record step (after a request, never awaited by one) waits up to `lingerMs` for a check to go
 * with: a gateway with one request at a time then makes one round trip a request, not two. Order
 * is kept, so a check issued after a record still sees it.
 *
 * Steps that follow one another in a call with the same kind, subject, set and shared texts (an
 * address, a country: `texts`, sent once a call beside the sets) go as one run: one head for all
 * of them (`c0.2.3*16`), then each step's own arguments — at 16 in flight a check is then its
 * fingerprint alone, one argument instead of three (an argument costs Redis ~1,100 instructions).
 *
 * A check's loop fingerprint (LoopArg) goes followed by the call's earlier checks of its subject
 * that it matches (loopMatches: usually none), so that the script counts those instead of
 * searching the entries the call added (lua/loop.lua).
 *
 * Record steps of one subject and detector set in the same call fold into the first of them (its
 * `fold` adds the later one's arguments: spend amounts summed, the largest share used): every step
 * of a call sees the same Redis time, so the subject ends as the steps one by one would leave it,
 * for a step's Lua cost (~35k Redis instructions) once instead of once a request. The first
 * caller gets what the folded step raised; the others get nothing raised (each detection is
 * raised once either way).
 */
import { sendBySlot } from '../redis/slot-groups.js'

/** Steps per script call at most: a long script holds up every other client of the Redis. */
export const MAX_BATCH = 128
/** How long record steps wait for a check step to share a script call with (default). */
export const RECORD_LINGER_MS = 5

/** Check, record, failure (a failed key: gateway-wide, one hash slot). */
export type StepKind = 'c' | 'r' | 'f'
/** A step's argument: a Buffer goes as its bytes (a loop fingerprint, lua/check.lua). */
type Arg = string | number | Buffer
/** An argument that names a key of the step's own: sent as its place in KEYS, the key once a call. */
export interface KeyArg {
  key: string
}
/**
 * A check's loop fingerprint (16 bytes, as lua/loop.lua keeps it) and the distance within which
 * its detector counts SimHashes near: sent followed by the call's earlier checks of the subject it
 * matches (loopMatches).
 */
export interface LoopArg {
  fingerprint: Buffer
  /** The same 16 bytes as four int32s: the hash's halves, the SimHash's hi and lo. */
  words: readonly [number, number, number, number]
  distance: number
}
type StepArg = Arg | KeyArg | LoopArg

/** Adds the arguments of a later step (`more`) to those of the step it folds into (`into`). */
export type Fold = (into: StepArg[], more: readonly StepArg[]) => void

interface Caller {
  resolve: (reply: unknown[]) => void
  reject: (error: unknown) => void
}

/** No shared texts. */
const NO_TEXTS: readonly string[] = []

interface Pending extends Caller {
  kind: StepKind
  /** The subject's keys (lua/batch.lua), all in one hash slot. */
  keys: string[]
  /** The step's detector set, as lua/subject.lua set_of reads it. */
  set: string
  args: StepArg[]
  /** Texts sent once a call with the sets and named in the step's head (lua/batch.lua). */
  texts: readonly string[]
  /** Callers whose steps folded into this one: answered with no detection raised. */
  folded?: Caller[]
}

export class StepBatcher {
  private pending: Pending[] = []
  /**
   * The pending steps later ones may fold into, by subject (its first key) and then set: two
   * lookups of strings made once (their hashes kept), not a key joined and hashed on every step.
   */
  private foldable = new Map<string, Map<string, Pending>>()
  private scheduled = false
  private lingering: NodeJS.Timeout | undefined

  /**
   * `run` sends one script call (KEYS, ARGV); `cluster`: group the steps by hash slot (a single
   * Redis takes every subject in one call).
   */
  constructor(
    private readonly run: (keys: string[], args: Arg[]) => Promise<unknown[]>,
    private readonly cluster: boolean,
    private readonly lingerMs = RECORD_LINGER_MS,
  ) {}

  /**
   * One step of a subject (its keys, all in one hash slot) with its detector set. Resolves with
   * the step's own reply. With `fold`, a later step of the same kind, subject and set before the
   * call is sent folds into this one (its caller gets `[]`). `texts`: the step's facts that most
   * steps of a call share (an address, a country), sent once a call and named by the head.
   */
  step(
    kind: StepKind,
    keys: string[],
    set: string,
    args: StepArg[],
    fold?: Fold,
    texts: readonly string[] = NO_TEXTS,
  ): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      let sets: Map<string, Pending> | undefined
      if (fold !== undefined) {
        sets = this.foldable.get(keys[0]!)
        const into = sets?.get(set)
        if (into !== undefined && into.kind === kind) {
          fold(into.args, args)
          into.folded ??= []
          into.folded.push({ resolve, reject })
          return
        }
      }
      const p: Pending = { kind, keys, set, args, texts, resolve, reject }
      this.pending.push(p)
      if (fold !== undefined) {
        if (sets === undefined) {
          sets = new Map()
          this.foldable.set(keys[0]!, sets)
        }
        sets.set(set, p)
      }
      if (this.scheduled) return
      if (kind !== 'r' || this.pending.length >= MAX_BATCH || this.lingerMs === 0) {
        this.scheduled = true
        setImmediate(() => this.flush())
      } else {
        this.lingering ??= setTimeout(() => this.flush(), this.lingerMs)
      }
    })
  }

  private flush(): void {
    this.scheduled = false
    clearTimeout(this.lingering)
    this.lingering = undefined
    const pending = this.pending
    this.pending = []
    this.foldable.clear()
    sendBySlot(pending, MAX_BATCH, this.cluster, (group) => this.send(group))
  }

  /**
   * One script call (lua/batch.lua): each subject's keys and each detector set and shared text
   * once (an argument costs Redis ~1,100 instructions), each run of like steps one head naming
   * them (its subject by the place of its first key in KEYS, its set and texts by their places in
   * ARGV, how many steps it heads), then each step's own arguments.
   */
  private send(group: Pending[]): void {
    const keys: string[] = []
    const subjects = new Map<string, number>()
    const named = new Map<string, number>()
    // The sets and the shared texts, by their place in ARGV (a text never reads as a set).
    const texts = new Map<string, number>()
    const steps: Arg[] = []
    const place = (text: string) => {
      let at = texts.get(text)
      if (at === undefined) {
        at = texts.size + 2
        texts.set(text, at)
      }
      return at
    }
    // The run being written: its head's place in `steps`, its parts, how many steps it has.
    let head = -1
    let kind = ''
    let subject = -1
    let set = -1
    let own: number[] = []
    let count = 0
    // (A step's text places, before they are compared with the run's.)
    const next: number[] = []
    // Per subject (its place in KEYS): the fingerprints of its checks so far, 4 int32s each.
    let prints: Map<number, number[]> | undefined
    const close = () => {
      if (head < 0) return
      let text = `${kind}${subject}.${set}`
      for (const t of own) text += `.${t}`
      steps[head] = count > 1 ? `${text}*${count}` : text
    }
    for (const p of group) {
      let s = subjects.get(p.keys[0]!)
      if (s === undefined) {
        s = keys.length
        subjects.set(p.keys[0]!, s)
        for (const k of p.keys) keys.push(k)
      }
      const at = place(p.set)
      let same = p.kind === kind && s === subject && at === set && p.texts.length === own.length
      for (let j = 0; j < p.texts.length; j++) {
        const t = place(p.texts[j]!)
        if (same && t !== own[j]) same = false
        next[j] = t
      }
      if (same) count++
      else {
        close()
        own = next.slice(0, p.texts.length)
        kind = p.kind
        subject = s
        set = at
        count = 1
        head = steps.length
        steps.push('')
      }
      for (const a of p.args) {
        if (typeof a === 'object' && 'fingerprint' in a) {
          prints ??= new Map()
          let earlier = prints.get(s)
          if (earlier === undefined) {
            earlier = []
            prints.set(s, earlier)
          }
          steps.push(loopMatches(a, earlier))
          continue
        }
        if (typeof a !== 'object' || !('key' in a)) {
          steps.push(a)
          continue
        }
        let k = named.get(a.key)
        if (k === undefined) {
          keys.push(a.key)
          k = keys.length
          named.set(a.key, k)
        }
        steps.push(k)
      }
    }
    close()
    const args: Arg[] = [texts.size, ...texts.keys(), ...steps]
    this.run(keys, args).then(
      (replies) => {
        for (let i = 0; i < group.length; i++) {
          const p = group[i]!
          // 0: a step with nothing to say (lua/check.lua; cheaper for Redis to send than an empty list).
          const reply = replies[i] === 0 ? [] : replies[i]
          if (!Array.isArray(reply)) rejectAll(p, new Error('the detector batch script gave no reply'))
          else if (reply[0] === 'error') rejectAll(p, new Error(String(reply[1])))
          else {
            p.resolve(reply)
            if (p.folded !== undefined) for (const c of p.folded) c.resolve([])
          }
        }
      },
      (error: unknown) => {
        for (const p of group) rejectAll(p, error)
      },
    )
  }
}

/** A failed step's caller and those of the steps folded into it. */
function rejectAll(p: Pending, error: unknown): void {
  p.reject(error)
  if (p.folded !== undefined) for (const c of p.folded) c.reject(error)
}

/**
 * A check's loop fingerprint followed by the call's earlier checks of the subject (`earlier`: the
 * fingerprints of its checks with the loop on so far in this call, as 4 int32s each: the hash's
 * halves, the SimHash's hi and lo) that it matches, by ordinal (0 the first), a byte each: o when
 * the SimHashes are within `distance` bits but the hashes differ, 128 + o when all 16 bytes are
 * equal (the same prompt: lua/loop.lua takes its count from the newest such entry's stamp), 254
 * then o when the hashes are equal and the SimHashes differ but are near (or the distance is 0),
 * 255 then o when the hashes are equal and the SimHashes not near (a 64-bit hash collision). Most
 * checks match none: the 16 bytes alone. lua/loop.lua counts those in its window without searching the entries the call added
 * (their order there is this order, the checks that failed before they observed keeping their
 * places). A call has at most MAX_BATCH (128) steps, so an earlier ordinal is at most 126.
 */
export function loopMatches(a: LoopArg, earlier: number[]): Buffer {
  const fp = a.fingerprint
  const [h0, h1, hi, lo] = a.words
  const d = a.distance
  let matches: number[] | undefined
  for (let j = 0; j < earlier.length; j += 4) {
    const exact = earlier[j] === h0 && earlier[j + 1] === h1
    const near = d > 0 && within(earlier[j + 2]! ^ hi, earlier[j + 3]! ^ lo, d)
    if (!exact && !near) continue
    const o = j / 4
    if (o > 126) throw new Error('a detector call carries at most 128 steps')
    matches ??= []
    if (!exact) matches.push(o)
    else if (earlier[j + 2] === hi && earlier[j + 3] === lo) matches.push(128 + o)
    else if (near || d === 0) matches.push(254, o)
    else matches.push(255, o)
  }
  earlier.push(h0, h1, hi, lo)
  return matches === undefined ? fp : Buffer.concat([fp, Buffer.from(matches)])
}

/**
 * Whether x and y have at most `d` bits set between them, one set bit at a time: it stops at d + 1
 * (most pairs are far apart), where bitsApart() (core/detectors/sketch.ts) counts all of them.
 */
function within(x: number, y: number, d: number): boolean {
  let left = d
  while (x !== 0) {
    x &= x - 1
    if (--left < 0) return false
  }
  while (y !== 0) {
    y &= y - 1
    if (--left < 0) return false
  }
  return true
}
