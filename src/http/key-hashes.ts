import { hashApiKey } from './keys.js'

/**
 * The SHA-256 of the keys that opened a record lately, by the key as presented: a keyed request
 * hashes its key (hashApiKey, ~5,700 instructions of a gateway call) to look it up, and a client
 * sends the same key call after call. A hash never changes, so nothing here goes stale: the
 * record it finds is still looked up (and its status checked) on every request. Only keys that
 * opened a record are kept (remember()), so keys that fail cost no memory; at most `size`, the
 * whole map dropped when full. Keys live in process memory only, as the key cache of a control
 * database's keys keeps them (control/key-cache.ts), never in a store, log or header.
 */
export class KeyHashes {
  private readonly hashes = new Map<string, string>()

  constructor(private readonly size = 1024) {}

  /** hashApiKey(key). */
  of(key: string): string {
    return this.hashes.get(key) ?? hashApiKey(key)
  }

  /** Keeps `hash` (hashApiKey(key)) for a key that opened a record. */
  remember(key: string, hash: string): void {
    if (this.hashes.has(key)) return
    if (this.hashes.size >= this.size) this.hashes.clear()
    this.hashes.set(key, hash)
  }

  /** How many keys are kept. */
  get count(): number {
    return this.hashes.size
  }
}
