/**
 * The loop ring's index (src/core/detectors/loop-entries.ts): a count visits the entries of one
 * bucket per key, and a slot reused for a new entry ends the chains that still lead to it. Held
 * equal here to a plain newest-first list counted entry by entry, at the default capacity (91
 * fingerprints, 64 buckets a key) and at small ones, through windows that forget entries, clocks
 * that go back, capacities that change, and SimHashes drawn near a few others so that many share
 * quarters, bytes of them, or all of them.
 */
import { describe, expect, it } from 'vitest'
import { emptyState, observeLoop } from '../../src/core/detectors/index.js'
import { type LoopEntry, observeList } from '../helpers/loop-list.js'

const T0 = 1_700_000_000_000
/** Prompt hashes: two that share their first half (the index's key), one their second. */
const HASHES = [
  '0123456789abcdef',
  '0123456789abcdee',
  'f123456789abcdef',
  '80000000ffffffff',
  'ffffffff00000000',
]

/** A seeded generator: a number below `below`. */
function random(seed: number) {
  let x = seed
  return (below: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    return Math.floor(((x >>> 4) / 2 ** 28) * below)
  }
}

describe('the loop ring counted through its index', () => {
  it.each([
    [1, 0, 91],
    [2, 3, 91],
    [3, 3, 40],
    [4, 1, 7],
    [5, 2, 91],
    [6, 3, 2],
    [7, 0, 1],
  ])('equals a plain list (seed %i, distance %i, capacity %i and others)', (seed, distance, capacity) => {
    const next = random(seed)
    const state = emptyState()
    const list: LoopEntry[] = []
    // SimHashes near a few bases (0–4 bits flipped), or one of them exactly, or new.
    const bases = Array.from({ length: 6 }, () => [next(2 ** 32) >>> 0, next(2 ** 32) >>> 0] as const)
    let now = T0
    for (let i = 0; i < 3000; i++) {
      const max =
        i < 1000 ? capacity : i < 1500 ? Math.max(1, capacity >> 1) : i < 2000 ? capacity + 9 : capacity
      now += next(4) === 0 && i % 7 === 0 ? -next(50) : next(30)
      const [bhi, blo] = bases[next(bases.length)]!
      let hi = bhi
      let lo = blo
      const flips = next(3) === 0 ? 0 : next(5)
      for (let f = 0; f < flips; f++) {
        const bit = next(64)
        if (bit < 32) hi = (hi ^ (1 << bit)) >>> 0
        else lo = (lo ^ (1 << (bit - 32))) >>> 0
      }
      if (next(10) === 0) {
        hi = next(2 ** 32) >>> 0
        lo = next(2 ** 32) >>> 0
      }
      const e = { at: now, hash: HASHES[next(HASHES.length)]!, hi, lo }
      const windowMs = next(10) === 0 ? 40 : 200 + next(2000)
      const expected = observeList(list, e, now, windowMs, max, distance)
      expect(observeLoop(state, e, now, windowMs, max, distance)).toEqual(expected)
      expect(state.loop.length).toBe(list.length)
      if (i % 50 === 0) for (let j = 0; j < list.length; j++) expect(state.loop.at(j)).toEqual(list[j])
    }
  })
})
