/**
 * The memory store's detector state and the check step keep a prompt's fingerprint as numbers:
 * the loop ring holds no string (a hash string kept for as many calls as the ring holds was old
 * garbage for full collections), a check step made from a prompt carries its hash as two int32
 * halves and makes its hex digits only when a store reads them (the Redis store sends them), and
 * a step made by hand is counted by the hex digits of its hash — which must be a prompt hash.
 * The addresses a subject keeps are forgotten as before, though they are read only when one may
 * have left the window.
 */
import { describe, expect, it } from 'vitest'
import {
  checkStep,
  checkSubject,
  emptyState,
  fingerprint,
  hashHalf,
  observeAddress,
  observeLoop,
  resolveDetectors,
} from '../../src/core/detectors/index.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'

const T0 = 1_700_000_000_000
const loops = resolveDetectors({ loop: { alertAt: 3, throttleAt: 0, blockAt: 0 }, spend: false }).base

/** Every value reachable from `o` through own properties and arrays (not typed arrays). */
function valuesOf(o: unknown, seen = new Set<unknown>()): unknown[] {
  if (typeof o !== 'object' || o === null || seen.has(o) || ArrayBuffer.isView(o)) return [o]
  seen.add(o)
  return [o, ...Object.values(o).flatMap((v) => valuesOf(v, seen))]
}

describe('fingerprints as numbers', () => {
  it('the loop ring keeps no string', () => {
    const state = emptyState()
    for (let i = 0; i < 200; i++) {
      const f = fingerprint(`prompt ${i % 7} of a loop`)
      observeLoop(state, { at: T0 + i, ...f }, T0 + i, 60_000, 91, 3)
    }
    expect(state.loop.length).toBe(91)
    expect(valuesOf(state.loop).filter((v) => typeof v === 'string')).toEqual([])
    // What it keeps reads back as it was given.
    expect(state.loop.at(0)).toEqual({ at: T0 + 199, ...fingerprint('prompt 3 of a loop') })
  })

  it("a check step carries the prompt's hash as numbers, its hex digits made when read", () => {
    const prompt = 'Say hello in five words.'
    const loop = checkStep(loops, { prompt, isKey: false })!.loop!
    expect(valuesOf(loop).filter((v) => typeof v === 'string')).toEqual([])
    const f = fingerprint(prompt)
    expect({ hash: loop.hash, hi: loop.hi, lo: loop.lo }).toEqual(f)
    expect([hashHalf(loop.hash, 0), hashHalf(loop.hash, 8)]).toEqual([
      Number.parseInt(f.hash.slice(0, 8), 16) | 0,
      Number.parseInt(f.hash.slice(8), 16) | 0,
    ])
  })

  it('a step made by hand counts by its hash, as the same prompt made by checkStep', () => {
    const store = new MemoryDetectorStore({ now: () => T0 })
    const step = checkStep(loops, { prompt: 'again and again', isKey: false })!
    const byHand = { ...step, loop: { ...step.loop!, hash: step.loop!.hash } }
    const other = { ...step, loop: { ...step.loop!, hash: '0123456789abcdef' } }
    expect(store.check('key:a', step)).toMatchObject({ raised: [] })
    expect(store.check('key:a', other)).toMatchObject({ raised: [] })
    expect(store.check('key:a', byHand)).toMatchObject({ raised: [] })
    // The third with this hash: identical (3), though one was made by hand; `other` is not.
    expect(store.check('key:a', step)).toMatchObject({
      raised: [{ detector: 'loop', level: 1, value: 3, threshold: 3 }],
    })
  })

  it('a hash that is not 16 lower-case hex digits is an error, not a count', () => {
    const step = checkStep(loops, { prompt: 'x', isKey: false })!
    for (const hash of [
      'h1',
      '0123456789ABCDEF',
      '0123456789abcdeg',
      '0123456789abcde',
      ' 123456789abcdef',
    ]) {
      const state = emptyState()
      expect(() => checkSubject(state, { ...step, loop: { ...step.loop!, hash } }, T0), hash).toThrow(
        /16 hex digits/,
      )
    }
  })
})

describe('addresses, read only when one may have left the window', () => {
  it('are forgotten as a plain pass over them forgets them (clocks that go back, a cap)', () => {
    let x = 12345
    const next = (below: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      return (x >>> 8) % below
    }
    const state = emptyState()
    const plain = new Map<string, number>()
    let now = T0
    for (let i = 0; i < 5000; i++) {
      now += next(5) === 0 ? -next(400) : next(300)
      const windowMs = 200 + next(1000)
      const cap = 1 + next(8)
      const address = `10.0.0.${next(12)}`
      if (i % 997 === 996) {
        // As the memory store's clear() leaves it.
        state.addrs.clear()
        plain.clear()
      }
      for (const [a, at] of plain) if (at <= now - windowMs) plain.delete(a)
      if (plain.has(address) || plain.size < cap) plain.set(address, now)
      expect(observeAddress(state, address, now, windowMs, cap)).toBe(plain.size)
      expect([...state.addrs]).toEqual([...plain])
    }
  })
})
