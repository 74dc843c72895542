/**
 * A loop fingerprint goes to Redis as its 16 bytes (lua/check.lua), not as hex digits: through
 * every client library the store takes, bytes over 0x7f arrive intact (a client that sent them as
 * text would turn each into two bytes of UTF-8, and the step would fail), and identical and
 * near-identical prompts are counted as a MemoryDetectorStore counts them — also when the bytes
 * naming the call's earlier matches follow them (src/store/detectors/batch.ts loopMatches).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkStep, fingerprint, resolveDetectors } from '../../src/core/detectors/index.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { CLIENT_KINDS, type MadeClient, singleClient } from '../helpers/store-clients.js'

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis.stop()
})

const set = resolveDetectors({
  loop: { alertAt: 3, throttleAt: 5, blockAt: 8, blockMs: 60_000, nearDistance: 3 },
  spend: false,
}).base
const prompts = ['say hello', 'say hello!', 'Say hello.', 'write a poem about the sea', 'what is 2 + 2?']

describe.each(CLIENT_KINDS)('loop fingerprints as bytes, %s client', (kind) => {
  let made: MadeClient
  beforeAll(async () => {
    made = await singleClient(kind, redis.url)
    // ioredis queues nothing before it is ready (the store's options).
    const c = made.client as { status?: string; once?: (e: string, f: () => void) => void }
    if (c.status !== undefined && c.status !== 'ready') await new Promise<void>((r) => c.once!('ready', r))
  })
  afterAll(async () => {
    await made?.close()
  })

  it('arrive intact and count as in memory', async () => {
    // Some fingerprint holds a byte over 0x7f (as nearly every one does).
    const high = prompts.some((p) => {
      const f = fingerprint(p)
      return /[89a-f]/.test(f.hash.replace(/(.)./g, '$1')) || f.hi >= 0x80000000 || f.lo >= 0x80000000
    })
    expect(high).toBe(true)
    const store = new RedisDetectorStore({
      client: made.client as never,
      prefix: `fb${kind.replace(/\W/g, '')}:`,
    })
    const memory = new MemoryDetectorStore()
    for (let i = 0; i < 24; i++) {
      const step = checkStep(set, { prompt: prompts[(i * 7) % prompts.length]!, isKey: false })!
      const [a, b] = await Promise.all([store.check('key:s', step), memory.check('key:s', step)])
      expect({ ...a, refused: a.refused?.detector }).toEqual({ ...b, refused: b.refused?.detector })
    }
  })

  it("arrive intact with the call's earlier matches after them (bytes over 0x7f)", async () => {
    const store = new RedisDetectorStore({
      client: made.client as never,
      prefix: `fm${kind.replace(/\W/g, '')}:`,
    })
    const memory = new MemoryDetectorStore()
    // One call: identical prompts follow their first (a match byte of 128 + its ordinal).
    const steps = Array.from(
      { length: 12 },
      (_, i) => checkStep(set, { prompt: prompts[i % 3]!, isKey: false })!,
    )
    const redis = await Promise.all(steps.map((s) => store.check('key:m', s)))
    const mem = []
    for (const s of steps) mem.push(await memory.check('key:m', s))
    expect(redis.map((o) => ({ ...o, refused: o.refused?.detector }))).toEqual(
      mem.map((o) => ({ ...o, refused: o.refused?.detector })),
    )
    expect(mem.some((o) => o.raised.length > 0)).toBe(true)
  })
})
