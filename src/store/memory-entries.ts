import { Boxed, boxBytes, expiryOf, Mixed, packedBytes, type Slot, valueBytes } from './memory-layout.js'
import type { StateHint } from './types.js'

export const SWEEP_BATCH = 10_000
const EVICTION_SAMPLE = 16

/**
 * A string built by concatenation is a tree of its parts until it is flattened; kept as a Map key
 * it would hold every part (over 100 bytes a subject). Reading a character flattens it in place.
 */
function flat(key: string): string {
  key.charCodeAt(0)
  return key
}

/**
 * The MemoryStore's keys, bounded by an estimate of the heap they take (memory-layout.ts): expired
 * keys are swept, and when maxBytes or maxKeys is reached, keys closest to expiry are evicted.
 */
export class MemoryEntries {
  protected readonly entries = new Map<string, Slot>()
  protected accounted = 0
  /**
   * Changes whenever a key is added, removed or given another slot (not when a slot's numbers
   * change in place): a slot found at one generation is still its key's slot while the generation
   * is the same, so the store can skip the lookup (StateHint).
   */
  protected generation = 0
  private sweepCursor: MapIterator<[string, Slot]> | undefined
  /** Keys evicted because maxBytes or maxKeys was reached. */
  evictions = 0

  constructor(
    readonly maxBytes: number,
    readonly maxKeys: number,
    protected readonly now: () => number,
  ) {}

  /**
   * Puts `slot` under `key`, which holds `held` bytes now (a state of this layout) or nothing of
   * this layout (undefined: whatever else it holds is deleted first).
   */
  protected put(key: string, slot: Slot, bytes: number, held: number | undefined, now: number): void {
    if (held === undefined) {
      this.delete(key)
      this.insert(key, slot, bytes, now)
      return
    }
    this.grow(key, bytes - held, now)
    this.entries.set(key, slot)
    this.generation++
  }

  /** Accounts for `key` taking `delta` more bytes, making room elsewhere when that goes past maxBytes. */
  protected grow(key: string, delta: number, now: number): void {
    if (delta > 0 && this.accounted + delta > this.maxBytes) this.makeRoom(delta, now, key)
    this.accounted += delta
  }

  /** The boxed value of a key (a log, leases, a block or strikes), unless expired. */
  protected read(key: string, now: number): unknown {
    const slot = this.live(key, now)
    return slot instanceof Boxed ? slot.value : undefined
  }

  /**
   * read() through a hint (see StateHint) of where the key's slot was, or that it had none: a
   * subject that was never blocked costs no lookup of its block key on every call.
   */
  protected readHinted(key: string, hint: StateHint | undefined, now: number): unknown {
    if (hint === undefined) return this.read(key, now)
    let slot: Slot | undefined
    if (hint.owner === this && hint.generation === this.generation) slot = hint.slot as Slot | undefined
    else {
      slot = this.entries.get(key)
      hint.owner = this
      hint.generation = this.generation
      hint.slot = slot
    }
    if (slot === undefined) return undefined
    if (expiryOf(slot) <= now) {
      this.delete(key)
      return undefined
    }
    return slot instanceof Boxed ? slot.value : undefined
  }

  /** The slot of a key unless it has expired (then it is deleted). */
  protected live(key: string, now: number): Slot | undefined {
    const slot = this.entries.get(key)
    if (slot === undefined) return undefined
    if (expiryOf(slot) <= now) {
      this.delete(key)
      return undefined
    }
    return slot
  }

  /** Stores a value until it is full again; a state that is full already is the same as no key. */
  protected writeBoxed(key: string, value: unknown, ttlMs: number, now: number): void {
    if (!(ttlMs > 0) || value === undefined) {
      this.delete(key)
      return
    }
    const bytes = valueBytes(value)
    const slot = this.entries.get(key)
    if (slot instanceof Boxed) {
      this.accounted += bytes - slot.valueBytes
      slot.value = value
      slot.expiresAt = now + ttlMs
      slot.valueBytes = bytes
      return
    }
    if (slot !== undefined) this.delete(key)
    const box = boxBytes(key)
    this.insert(key, new Boxed(value, now + ttlMs, box, bytes), box + bytes, now)
  }

  /** Adds a key that is not there, first making room under maxBytes and maxKeys. */
  protected insert(key: string, slot: Slot, bytes: number, now: number): void {
    if (this.entries.size >= this.maxKeys || this.accounted + bytes > this.maxBytes) {
      this.makeRoom(bytes, now)
    }
    this.entries.set(flat(key), slot)
    this.generation++
    this.accounted += bytes
  }

  protected delete(key: string): void {
    const slot = this.entries.get(key)
    if (slot === undefined) return
    this.entries.delete(key)
    this.generation++
    this.accounted -= slotBytes(key, slot)
  }

  /**
   * Sweeps, then evicts, until `bytes` more fit under maxBytes and (unless `keep` is growing in
   * place) a key more under maxKeys. `keep` itself is never evicted.
   */
  protected makeRoom(bytes: number, now: number, keep?: string): void {
    const keys = keep === undefined ? 0 : 1
    const full = () => this.entries.size + 1 - keys > this.maxKeys || this.accounted + bytes > this.maxBytes
    this.sweep(1_000, now)
    while (full() && this.entries.size > keys) {
      let victim: string | undefined
      let soonest = Number.POSITIVE_INFINITY
      let seen = 0
      for (const [key, slot] of this.entries) {
        const expiry = expiryOf(slot)
        if (expiry < soonest && key !== keep) {
          soonest = expiry
          victim = key
        }
        if (++seen >= EVICTION_SAMPLE) break
      }
      this.delete(victim!)
      this.evictions++
    }
  }

  /** @internal Each live entry (memory-snapshot.ts writes them to a file). */
  forEachEntry(visit: (key: string, slot: Slot) => void): void {
    const now = this.now()
    for (const [key, slot] of this.entries) if (expiryOf(slot) > now) visit(key, slot)
  }

  /** @internal Puts back an entry read from a snapshot (memory-snapshot.ts), within the bounds. */
  restoreEntry(key: string, slot: Slot, bytes: number): void {
    this.delete(key)
    this.insert(key, slot, bytes, this.now())
  }

  /** Deletes expired keys, looking at up to `budget` keys from where the last sweep stopped. */
  sweep(budget: number, now = this.now()): void {
    this.sweepCursor ??= this.entries.entries()
    for (let i = 0; i < budget; i++) {
      const next = this.sweepCursor.next()
      if (next.done) {
        this.sweepCursor = undefined
        return
      }
      const [key, slot] = next.value
      if (expiryOf(slot) <= now) this.delete(key)
    }
  }
}

function slotBytes(key: string, slot: Slot): number {
  if (slot instanceof Boxed) return slot.boxBytes + slot.valueBytes
  if (slot instanceof Mixed) return slot.bytes
  return packedBytes(key, slot.length)
}
