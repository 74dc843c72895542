/**
 * Detector script calls with a loop fingerprint (a Buffer) through sluice's ioredis are encoded at
 * once (src/store/detectors/ioredis-binary.ts): the same bytes as ioredis's own encoding, ioredis's
 * piecewise encoding not run for them, key prefixes and subjects outside ASCII still right against
 * a real Redis; another copy of ioredis (5 here) is left to its own encoding.
 */
import { Command, Redis } from 'ioredis'
import { Redis as Redis5 } from 'ioredis5'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { checkStep, resolveDetectors, THROTTLE } from '../../src/core/detectors/index.js'
import { binaryCaller } from '../../src/store/detectors/ioredis-binary.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import type { IORedisClient } from '../../src/store/redis/connection.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis.stop()
})

const loopSet = resolveDetectors({
  loop: { alertAt: 3, throttleAt: 3, blockAt: 0, throttlePerMinute: 1 },
  spend: false,
}).base
type Writable = { name: string; toWritable(socket: unknown): string | Buffer }

describe('script calls through ioredis', () => {
  it('are encoded as ioredis encodes them: Buffers, numbers, empty and non-ASCII arguments', () => {
    const client = new Redis({ lazyConnect: true })
    const sent: (string | Buffer)[] = []
    ;(client as unknown as { sendCommand(c: Writable): Promise<unknown> }).sendCommand = (c) => {
      sent.push(c.toWritable(undefined))
      return Promise.resolve(0)
    }
    const bytes = Buffer.from([0, 0x7f, 0x80, 0xff, 13, 10, 0xc3, 0xa9])
    for (const args of [
      ['sluice:det:{key:a}', 3, bytes, '127.0.0.1', 0.125, Buffer.alloc(0), ''],
      ['sluice:det:{key:é}', Buffer.from([0x80]), 'ü', '😀'],
    ]) {
      void binaryCaller(client as unknown as IORedisClient)!(['FCALL', 'fn', 1, ...args])
      const theirs = new Command('FCALL', ['fn', 1, ...args], { replyEncoding: 'utf8' }).toWritable(
        undefined as never,
      )
      expect(Buffer.from(sent.pop()!).equals(Buffer.from(theirs))).toBe(true)
    }
    client.disconnect()
  })

  it("count a loop through a key prefix and for a subject outside ASCII, never through ioredis's encoding", async () => {
    const client = new Redis(redis.url, { keyPrefix: `p${process.pid}:` })
    const own = vi.spyOn(Command.prototype, 'toWritable')
    try {
      const store = new RedisDetectorStore({ client, prefix: 'six:' })
      const step = checkStep(loopSet, { prompt: 'Again and again', isKey: false })!
      for (const subject of ['key:ab', 'user:zoë']) {
        const outs = []
        for (let i = 0; i < 4; i++) outs.push(await store.check(subject, step))
        expect(outs.flatMap((o) => o.raised)).toEqual([
          { detector: 'loop', level: THROTTLE, value: 3, threshold: 3 },
        ])
        expect((await store.inspect(subject)).flags.loop?.lv).toBe(THROTTLE)
      }
      // ioredis's own encoding ran for other commands (inspect()'s), for no script call.
      const names = own.mock.instances.map((c) => (c as unknown as Writable).name.toLowerCase())
      expect(names).toContain('hgetall')
      expect(names.filter((n) => n === 'fcall')).toEqual([])
    } finally {
      own.mockRestore()
      client.disconnect()
    }
  })

  it('through another copy of ioredis (5) are left to it, and count the same', async () => {
    const client = new Redis5(redis.url)
    expect(binaryCaller(client as unknown as IORedisClient)).toBeUndefined()
    try {
      const store = new RedisDetectorStore({ client: client as unknown as IORedisClient, prefix: 'five:' })
      const step = checkStep(loopSet, { prompt: 'Again and again', isKey: false })!
      const outs = []
      for (let i = 0; i < 4; i++) outs.push(await store.check('key:ab', step))
      expect(outs.flatMap((o) => o.raised)).toEqual([
        { detector: 'loop', level: THROTTLE, value: 3, threshold: 3 },
      ])
    } finally {
      client.disconnect()
    }
  })
})
