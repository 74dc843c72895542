/**
 * MemoryDetectorStore keeps at most `maxSubjects`, the least recently seen going first, and drops
 * a subject's state once it has been idle `ttlMs`. A subject seen twice in a row is not moved in
 * the map's order again (it is the newest already): these hold the order and the expiry the same
 * through that shortcut.
 */
import { describe, expect, it } from 'vitest'
import { checkStep, detectorSetFor, resolveDetectors } from '../../src/core/detectors/index.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'

const set = detectorSetFor(resolveDetectors({}), 'service', undefined)
const step = () => checkStep(set, { prompt: 'hello there', address: '10.0.0.1', isKey: true })!

describe('the memory detector store: order and expiry', () => {
  it('evicts the least recently seen, also when the newest is seen again in a row', async () => {
    let now = 1_000_000
    const store = new MemoryDetectorStore({ maxSubjects: 2, now: () => now })
    await store.seed('a', 1)
    await store.seed('b', 2)
    store.check('a', step())
    store.check('a', step())
    now += 10
    await store.seed('c', 3) // b is the least recently seen
    expect((await store.inspect('a')).baseline).toBe(1)
    expect((await store.inspect('b')).baseline).toBe(0)
    expect((await store.inspect('c')).baseline).toBe(3)
    store.check('c', step())
    store.check('a', step())
    store.check('a', step())
    await store.seed('d', 4) // c now
    expect((await store.inspect('c')).baseline).toBe(0)
    expect((await store.inspect('a')).baseline).toBe(1)
    expect(store.size).toBe(2)
  })

  it('with room for one: the subject seen again stays, another replaces it', async () => {
    const store = new MemoryDetectorStore({ maxSubjects: 1 })
    await store.seed('a', 5)
    store.check('a', step())
    store.check('a', step())
    expect((await store.inspect('a')).baseline).toBe(5)
    store.check('b', step())
    expect((await store.inspect('a')).baseline).toBe(0)
    await store.seed('a', 6)
    store.check('a', step())
    expect((await store.inspect('a')).baseline).toBe(6)
    expect(store.size).toBe(1)
  })

  it('a subject idle for ttlMs starts anew, seen in a row or not', async () => {
    let now = 1_000_000
    const store = new MemoryDetectorStore({ ttlMs: 1000, now: () => now })
    await store.seed('a', 7)
    store.check('a', step())
    now += 999
    store.check('a', step()) // not idle for 1000: kept, and its time renewed
    now += 999
    expect((await store.inspect('a')).baseline).toBe(7)
    now += 1
    store.check('a', step())
    expect((await store.inspect('a')).baseline).toBe(0)
  })
})
