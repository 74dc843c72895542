/**
 * With each check the gateway sends which of the call's earlier checks of the subject it matches
 * (src/store/detectors/batch.ts loopMatches), and lua/loop.lua counts those instead of searching
 * the entries the call added: the bytes for near, identical and hash-colliding fingerprints, and
 * a collision (the same 64-bit hash, SimHashes far apart) counted as the memory store counts it.
 */
import { describe, expect, it } from 'vitest'
import { type CheckStep, checkStep, resolveDetectors } from '../../src/core/detectors/index.js'
import { type LoopArg, loopMatches } from '../../src/store/detectors/batch.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { redisForFile } from '../helpers/redis-clients.js'

const { client } = redisForFile()

/** A fingerprint as the store hands it to the batcher: its 16 bytes and the same as int32s. */
const arg = (h0: number, h1: number, hi: number, lo: number, distance = 3): LoopArg => {
  const words = [h0 | 0, h1 | 0, hi | 0, lo | 0] as const
  const fingerprint = Buffer.alloc(16)
  for (const [i, w] of words.entries()) fingerprint.writeInt32LE(w, i * 4)
  return { fingerprint, words, distance }
}

/** The loop detector alone: an alert at 2, distance 3, every match counted as near. */
const loopOnly = (throttleAt: number, blockAt: number) =>
  resolveDetectors({
    loop: { alertAt: 2, throttleAt, blockAt, nearDistance: 3, nearFactor: 1, throttlePerMinute: 1000 },
    spend: false,
    sharedKey: false,
    scraping: false,
  }).base

describe('loopMatches', () => {
  it("names the call's earlier matching checks by ordinal: near, identical, the same hash, colliding", () => {
    const earlier: number[] = []
    const send = (a: LoopArg) => [...loopMatches(a, earlier).subarray(16)]
    expect(send(arg(1, 2, 0xf0, 0))).toEqual([]) // 0
    expect(send(arg(1, 2, 0xf0, 0))).toEqual([128]) // 1: identical to 0
    expect(send(arg(3, 4, 0xf1, 0x80000000))).toEqual([0, 1]) // 2: two bits from 0 and 1
    expect(send(arg(3, 4, 0xf1, 0x80000000, 1))).toEqual([2 + 128]) // 3: within 1 bit of 2 only
    expect(send(arg(1, 2, 0x0f, 0))).toEqual([255, 0, 255, 1]) // 4: 0's and 1's hash, 8 bits apart
    expect(send(arg(9, 9, 0x0f, 0xffffffff, 0))).toEqual([]) // 5: distance 0, a new hash
    expect(send(arg(1, 2, 0xff, 0xff, 0))).toEqual([254, 0, 254, 1, 254, 4]) // 6: distance 0, 0's hash
    // 7: 0's hash one bit from it (near, not the same 16 bytes), near 2 and 3, colliding with 4 and 6
    expect(send(arg(1, 2, 0xf1, 0))).toEqual([254, 0, 254, 1, 2, 3, 255, 4, 255, 6])
    expect(send(arg(1, 2, 0xff, 0xff, 0))).toEqual([254, 0, 254, 1, 254, 4, 128 + 6, 254, 7]) // 8: 6 again
    expect(earlier.length).toBe(9 * 4)
  })

  it('sends the 16 bytes alone, the same Buffer, when nothing matches', () => {
    const a = arg(5, 6, 7, 8)
    expect(loopMatches(a, [1, 2, 0xffff, 0xffff])).toBe(a.fingerprint)
  })
})

describe('a 64-bit hash collision among the checks of one call', () => {
  it('counts as identical, not near, as in the memory store', async () => {
    const set = loopOnly(3, 4)
    const step = checkStep(set, { prompt: 'any', isKey: false })!
    const as = (hash: string, hi: number, lo: number): CheckStep => ({
      ...step,
      loop: { ...step.loop!, hash, hi, lo },
    })
    const H = '0123456789abcdef'
    // One hash with SimHashes far apart, and a near-identical prompt of another hash.
    const steps = [
      as(H, 0x0000ffff, 0),
      as(H, 0xffff0000, 0),
      as('fedcba9876543210', 0x00ff00ff, 0xff00ff00),
      as(H, 0x00ff00ff, 0xff00ff01),
    ]
    const store = new RedisDetectorStore({ client: client(), prefix: 'hc:' })
    const memory = new MemoryDetectorStore()
    const redis = await Promise.all(steps.map((s) => store.check('key:c', s)))
    const mem = []
    for (const s of steps) mem.push(await memory.check('key:c', s))
    expect(redis).toEqual(mem)
    // The last: three identical (a throttle), two near (itself and the third), not four (a block).
    expect(mem.map((o) => o.raised.map((r) => [r.level, r.value]))).toEqual([[], [[1, 2]], [], [[2, 3]]])
  })
})

describe('a check that names no earlier check', () => {
  it('fails alone, observing nothing: the checks after it count as without it', async () => {
    const set = loopOnly(0, 0)
    const c = client()
    // The second check's fingerprint followed by ordinal 5: no check before it has that ordinal.
    let bad = -1
    const send = c.sendCommand.bind(c) as (command: { name: string; args: unknown[] }) => unknown
    ;(c as unknown as { sendCommand: typeof send }).sendCommand = (command) => {
      if (command.name.toUpperCase() === 'FCALL') {
        let k = 0
        command.args = command.args.map((a) =>
          Buffer.isBuffer(a) && k++ === bad ? Buffer.concat([a, Buffer.from([5])]) : a,
        )
      }
      return send(command)
    }
    const store = new RedisDetectorStore({ client: c, prefix: 'nm:' })
    await store.check('key:warm', checkStep(set, { prompt: 'warm', isKey: false })!) // the library loaded
    bad = 1
    const prompts = ['a b c d e f', 'a b c d e f', 'a b c d e f', 'x y z']
    const redis = await Promise.allSettled(
      prompts.map((prompt) => store.check('key:n', checkStep(set, { prompt, isKey: false })!)),
    )
    expect(redis[1]).toMatchObject({ status: 'rejected', reason: { message: /names no earlier check/ } })
    const memory = new MemoryDetectorStore()
    const kept = []
    for (const prompt of [prompts[0]!, prompts[2]!, prompts[3]!]) {
      kept.push(await memory.check('key:n', checkStep(set, { prompt, isKey: false })!))
    }
    expect([redis[0], redis[2], redis[3]].map((r) => (r as PromiseFulfilledResult<unknown>).value)).toEqual(
      kept,
    )
    // The third check is the second of its prompt that observed: an alert.
    expect(kept[1]!.raised.map((r) => r.level)).toEqual([1])
  })
})
