/**
 * The Redis detector store sends the check and record steps of one event-loop turn as one script
 * call (per hash slot on a cluster): each step still decided alone, a level raised exactly once
 * across callers and across instances, a failing step rejecting only its own caller. And the
 * shortcuts of its scripts (addresses read only when one may have expired, fingerprints in one
 * string) forget what is out of the window as the memory store does.
 */
import type { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BLOCK, checkStep, recordStep, resolveDetectors, THROTTLE } from '../../src/core/detectors/index.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import type { DetectorStore } from '../../src/store/detectors/types.js'
import { redisForFile } from '../helpers/redis-clients.js'
import { type RedisClusterServer, startRedisCluster } from '../helpers/redis-cluster.js'
import { sleep } from '../helpers/sleep.js'

let n = 0
// Each test's clients: counted (their script calls and arguments), disconnected after the file.
const { counted: countedClient } = redisForFile()

const set = (input = {}) => resolveDetectors(input).base
const loops = set({ loop: { alertAt: 10, throttleAt: 20, blockAt: 40, throttlePerMinute: 1 }, spend: false })

describe('Redis detector store: steps of one turn in one script call', () => {
  it('60 checks of one subject in one turn: one script call, each level raised exactly once', async () => {
    const { client, scriptCalls } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `b${++n}:` })
    await store.check('key:warm', checkStep(loops, { prompt: 'warm up', isKey: false })!)
    const before = scriptCalls()
    const step = checkStep(loops, { prompt: 'the same prompt again', isKey: false })!
    const outs = await Promise.all(Array.from({ length: 60 }, () => store.check('key:loop', step)))
    expect(scriptCalls() - before).toBe(1)
    // In order, as if one at a time: the 10th alerts, the 20th throttles, the 40th blocks.
    const raised = outs.map((o, i) => [i + 1, o.raised.map((r) => r.level)] as const)
    expect(raised.filter(([, levels]) => levels.length > 0)).toEqual([
      [10, [1]],
      [20, [THROTTLE]],
      [40, [BLOCK]],
    ])
    // From the block on, every one is refused; the 21st..39th are throttled (one a minute passes).
    expect(outs.slice(39).every((o) => o.refused?.level === BLOCK)).toBe(true)
    expect(outs.slice(20, 39).filter((o) => o.refused === undefined).length).toBeLessThanOrEqual(2)
  })

  it("each subject's keys and each detector set go once in a script call, not once a step", async () => {
    const { client, sent } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `b${++n}:` })
    const both = set({ sharedKey: { alertAt: 50 } })
    await store.check('key:warm', checkStep(both, { prompt: 'warm up', isKey: true, address: '10.0.0.1' })!)
    sent.length = 0
    // Two subjects, 20 checks and 20 records each, in one turn.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => [
        store.check(
          `key:k${i % 2}`,
          checkStep(both, { prompt: `p ${i}`, isKey: true, address: '10.0.0.2' })!,
        ),
        store.record(`key:k${i % 2}`, recordStep(both, { tokens: 10, usd: 0 }, 0.5)!),
      ]).flat(),
    )
    expect(sent).toHaveLength(1)
    const keyCount = Number(sent[0]![2])
    // Five keys a subject; then the number of shared texts, the texts (the two sets, check and
    // record, and the address); then 42 steps: 40 checks (the subjects alternate: each a head and
    // the fingerprint), and a subject's 20 records folded into one (a head, the amount, the share
    // used: record-fold.test.ts).
    expect(keyCount).toBe(10)
    const argv = sent[0]!.slice(3 + keyCount)
    expect(Number(argv[0])).toBe(3)
    expect(argv.slice(1, 4)).toContain('10.0.0.2')
    expect(argv).toHaveLength(1 + 3 + 40 * 2 + 2 * 3)
  })

  it("a subject's checks one after another in a call go as one run: one head, then each fingerprint", async () => {
    const { client, sent } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `b${++n}:` })
    const both = set({ loop: { alertAt: 16, throttleAt: 0, blockAt: 0 }, sharedKey: { alertAt: 2 } })
    await store.check('key:warm', checkStep(both, { prompt: 'warm up', isKey: true, address: '10.0.0.1' })!)
    sent.length = 0
    const check = (address: string) =>
      store.check('key:r', checkStep(both, { prompt: 'the same', isKey: true, address })!)
    // 15 from one address, then one from a second: two runs (the second names another address).
    const outs = await Promise.all([
      ...Array.from({ length: 15 }, () => check('10.0.0.1')),
      check('10.0.0.2'),
    ])
    const argv = sent[0]!.slice(3 + Number(sent[0]![2]))
    // The count of texts, the set and the two addresses; a head of 15 and their fingerprints; a
    // head of one and its fingerprint.
    expect(argv).toHaveLength(1 + 3 + 1 + 15 + 1 + 1)
    expect(argv[4]).toMatch(/^c0\.\d+\.\d+\*15$/)
    expect(argv[20]).toMatch(/^c0\.\d+\.\d+$/)
    // Each step decided as alone, in order: the 16th identical prompt alerts, the second address too.
    expect(outs.flatMap((o) => o.raised.map((r) => [r.detector, r.value]))).toEqual([
      ['loop', 16],
      ['sharedKey', 2],
    ])
    expect(outs.slice(0, 15).every((o) => o.raised.length === 0)).toBe(true)
  })

  it('a run whose steps fail rejects each of its callers; the run after it is decided', async () => {
    const { client, scriptCalls } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `b${++n}:` })
    const s = set({ loop: { alertAt: 3, throttleAt: 0, blockAt: 0 }, spend: false })
    // key:bad's fingerprints key holds a list: its checks fail.
    await client.lpush(store.keys('key:bad').loop, 'not a string')
    await store.check('key:warm', checkStep(s, { prompt: 'warm up', isKey: false })!)
    const before = scriptCalls()
    const check = (subject: string) => store.check(subject, checkStep(s, { prompt: 'p', isKey: false })!)
    const results = await Promise.allSettled([
      ...Array.from({ length: 3 }, () => check('key:bad')),
      ...Array.from({ length: 3 }, () => check('key:good')),
    ])
    expect(scriptCalls() - before).toBe(1)
    expect(results.map((r) => r.status)).toEqual([
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ])
    const raised = results.map((r) => (r.status === 'fulfilled' ? r.value.raised.length : -1))
    expect(raised).toEqual([-1, -1, -1, 0, 0, 1])
  })

  it('two instances on one Redis, interleaved in the same turns: one alert, one throttle, one block', async () => {
    const prefix = `b${++n}:`
    const a = new RedisDetectorStore({ client: countedClient().client, prefix })
    const b = new RedisDetectorStore({ client: countedClient().client, prefix })
    const step = checkStep(loops, { prompt: 'shared loop', isKey: false })!
    const outs = await Promise.all(
      Array.from({ length: 80 }, (_, i) => (i % 2 === 0 ? a : b).check('key:both', step)),
    )
    const levels = outs.flatMap((o) => o.raised.map((r) => r.level)).sort()
    expect(levels).toEqual([1, THROTTLE, BLOCK])
  })

  it('a step that fails rejects only its own caller; the others in its script call go on', async () => {
    const { client, scriptCalls } = countedClient()
    const prefix = `b${++n}:`
    const store = new RedisDetectorStore({ client, prefix })
    const s = set({ spend: { floorPerMinute: 1e12 } })
    // key:bad's fingerprints key holds a list, key:broken's state a string: their steps fail.
    await client.lpush(store.keys('key:bad').loop, 'not a string')
    await client.set(store.keys('key:broken').state, 'not a hash')
    const before = scriptCalls()
    const check = (subject: string) =>
      store.check(subject, checkStep(s, { prompt: `hello ${subject}`, address: '192.0.2.1', isKey: true })!)
    const record = (subject: string) => store.record(subject, recordStep(s, { tokens: 10, usd: 0 }, 0.5)!)
    const results = await Promise.allSettled([
      check('key:good'),
      check('key:bad'),
      record('key:bad'),
      record('key:broken'),
      check('key:good'),
      record('key:good'),
    ])
    expect(scriptCalls() - before).toBe(1)
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ])
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/)
    expect(String((results[3] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/)
    // The good subject's steps took effect: two addresses-worth of checks, one record.
    const view = await store.inspect('key:good')
    expect(view.addresses).toEqual(['192.0.2.1'])
  })

  it('after a step that failed, the next step of its subject in the same call reads what Redis holds', async () => {
    const { client } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `b${++n}:` })
    const s = set({ loop: { alertAt: 1, throttleAt: 0, blockAt: 0 }, spend: false })
    // The addresses key holds a string: the first check raises the loop alert, then fails on it.
    await client.set(store.keys('key:x').addrs, 'not a hash')
    const [failed, next] = await Promise.allSettled([
      store.check('key:x', checkStep(s, { prompt: 'p', address: '192.0.2.1', isKey: true })!),
      store.check('key:x', checkStep(s, { prompt: 'p', isKey: false })!),
    ])
    expect(failed.status).toBe('rejected')
    // The failed step's alert was never written: the next one raises (and reports) it.
    expect(next.status === 'fulfilled' && next.value.raised).toMatchObject([{ detector: 'loop', level: 1 }])
    expect(await client.hget(store.keys('key:x').state, 'loop.lv')).toBe('1')
  })
  it("a subject's hash made by a later step of the call still expires", async () => {
    const { client } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `b${++n}:`, ttlMs: 60_000 })
    const s = set({ loop: false, spend: { floorPerMinute: 1e12 } })
    // The check writes nothing (no hash yet to expire); the record then makes the hash.
    await Promise.all([
      store.check('key:new', checkStep(s, { isKey: false })!),
      store.record('key:new', recordStep(s, { tokens: 5, usd: 0 }, 0.1)!),
    ])
    const ttl = await client.pttl(store.keys('key:new').state)
    expect(ttl).toBeGreaterThan(0)
    // ttl and at most a 64th more (lua/subject.lua renew).
    expect(ttl).toBeLessThanOrEqual(60_000 + 937)
  })
  it('the steps of one subject in one call write its hash once; a failing step keeps what those before it wrote', async () => {
    const { client, scriptCalls } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `b${++n}:` })
    const s = set({ loop: { alertAt: 3, throttleAt: 0, blockAt: 0 }, spend: { floorPerMinute: 1e12 } })
    await store.check('key:warm', checkStep(s, { prompt: 'warm up', isKey: false })!)
    await client.config('RESETSTAT')
    const before = scriptCalls()
    const outs = await Promise.all([
      ...Array.from({ length: 4 }, () =>
        store.check('key:h', checkStep(s, { prompt: 'same', isKey: false })!),
      ),
      store.record('key:h', recordStep(s, { tokens: 7, usd: 0 }, 0.1)!).then(() => undefined),
      store.record('key:h', recordStep(s, { tokens: 5, usd: 0 }, 0.1)!).then(() => undefined),
    ])
    expect(scriptCalls() - before).toBe(1)
    const info = await client.info('commandstats')
    expect(/cmdstat_hset:calls=(\d+)/.exec(info)?.[1]).toBe('1')
    expect(outs.flatMap((o) => o?.raised ?? [])).toMatchObject([{ detector: 'loop', level: 1, value: 3 }])
    const state = store.keys('key:h').state
    expect(await client.hmget(state, 'loop.lv', 'ss')).toEqual(['1', '12'])
    expect(await client.pttl(state)).toBeGreaterThan(0)

    // The second check fails (its addresses key holds a string): the first one's alert is written.
    await client.set(store.keys('key:g').addrs, 'not a hash')
    const one = set({ loop: { alertAt: 1, throttleAt: 0, blockAt: 0 }, spend: false })
    const [first, failed] = await Promise.allSettled([
      store.check('key:g', checkStep(one, { prompt: 'p', isKey: false })!),
      store.check('key:g', checkStep(one, { prompt: 'q', address: '192.0.2.1', isKey: true })!),
    ])
    expect(first.status === 'fulfilled' && first.value.raised).toMatchObject([{ detector: 'loop', level: 1 }])
    expect(failed.status).toBe('rejected')
    expect(await client.hget(store.keys('key:g').state, 'loop.lv')).toBe('1')
  })
  it('the checks of one subject in one call read and write its fingerprints once, each seeing the ones before', async () => {
    const { client, scriptCalls } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `b${++n}:` })
    const s = set({ loop: { alertAt: 20, throttleAt: 0, blockAt: 0 }, spend: false })
    await store.check('key:f', checkStep(s, { prompt: 'warm up', isKey: false })!)
    const commands = async () => {
      const info = await client.info('commandstats')
      const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
      return { get: calls('get'), set: calls('set'), append: calls('append') }
    }
    await client.config('RESETSTAT')
    const before = scriptCalls()
    const outs = await Promise.all(
      Array.from({ length: 12 }, () =>
        store.check('key:f', checkStep(s, { prompt: 'again', isKey: false })!),
      ),
    )
    expect(scriptCalls() - before).toBe(1)
    // One GET of the fingerprints and one of the allow key; the 12 new ones APPENDed at once.
    expect(await commands()).toEqual({ get: 2, set: 0, append: 1 })
    expect(outs.every((o) => o.raised.length === 0)).toBe(true)
    // 1 + 12 fingerprints of 27 bytes (each with its stamp), kept for the loop window.
    const key = store.keys('key:f').loop
    expect(await client.strlen(key)).toBe(13 * 27)
    expect(await client.pttl(key)).toBeGreaterThan(0)
    // The next ones count those 12: the 20th identical prompt alerts.
    const more = await Promise.all(
      Array.from({ length: 8 }, () => store.check('key:f', checkStep(s, { prompt: 'again', isKey: false })!)),
    )
    expect(more.flatMap((o) => o.raised)).toMatchObject([{ detector: 'loop', level: 1, value: 20 }])
  })
})

describe('Redis detector store on a cluster', () => {
  let cluster: RedisClusterServer
  let client: Cluster
  beforeAll(async () => {
    cluster = await startRedisCluster()
    client = cluster.client()
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
  }, 60_000)
  afterAll(async () => {
    await client?.quit()
    await cluster?.stop()
  })

  it('steps of many subjects in one turn go per hash slot, each decided', async () => {
    const store = new RedisDetectorStore({ client, prefix: 'cl:' })
    const s = set({ loop: { alertAt: 3, throttleAt: 0, blockAt: 0 }, spend: { floorPerMinute: 1e12 } })
    const subjects = Array.from({ length: 12 }, (_, i) => `key:k${i}`)
    const outs = await Promise.all(
      subjects.flatMap((subject) => [
        ...Array.from({ length: 3 }, () =>
          store.check(subject, checkStep(s, { prompt: 'again', address: '192.0.2.7', isKey: true })!),
        ),
        store.record(subject, recordStep(s, { tokens: 5, usd: 0 }, 0.1)!).then(() => undefined),
      ]),
    )
    const alerts = outs.flatMap((o) => o?.raised ?? [])
    expect(alerts).toHaveLength(subjects.length)
    expect(alerts.every((r) => r.detector === 'loop' && r.level === 1)).toBe(true)
    for (const subject of subjects) {
      expect((await store.inspect(subject)).flags.loop?.lv).toBe(1)
    }
  })
})

const kinds: [string, () => DetectorStore][] = [
  ['memory', () => new MemoryDetectorStore()],
  ['redis', () => new RedisDetectorStore({ client: countedClient().client, prefix: `w${++n}:` })],
]

describe.each(kinds)('%s detector store: what leaves the window is forgotten', (_kind, make) => {
  it('identical prompts older than the loop window no longer count', async () => {
    const store = make()
    const s = set({ loop: { windowMs: 300, alertAt: 3, throttleAt: 0, blockAt: 0 }, spend: false })
    const step = checkStep(s, { prompt: 'ping', isKey: false })!
    const raised = []
    for (let i = 0; i < 2; i++) raised.push(...(await store.check('key:w', step)).raised)
    await sleep(400)
    for (let i = 0; i < 2; i++) raised.push(...(await store.check('key:w', step)).raised)
    expect(raised).toEqual([])
    raised.push(...(await store.check('key:w', step)).raised)
    expect(raised).toMatchObject([{ detector: 'loop', level: 1, value: 3 }])
  })

  it('addresses not seen in the shared-key window are forgotten, those seen again kept', async () => {
    const store = make()
    // A window of 1.5 s and steps of 1 s: a loaded machine may stretch each step by up to half a
    // second (with 300 and 200 ms, a step 100 ms late forgot .3 too).
    const s = set({ sharedKey: { windowMs: 1_500, alertAt: 4, factor: 0 }, loop: false, spend: false })
    const use = (address: string) => store.check('key:a', checkStep(s, { address, isKey: true })!)
    for (const address of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) await use(address)
    await sleep(1_000)
    await use('192.0.2.3')
    await sleep(1_000)
    // .1 and .2 were last seen over 1.5 s ago; .3 1 s ago.
    const raised = [...(await use('192.0.2.4')).raised, ...(await use('192.0.2.5')).raised]
    expect(raised).toEqual([])
    expect((await store.inspect('key:a')).addresses.sort()).toEqual(['192.0.2.3', '192.0.2.4', '192.0.2.5'])
    // A fourth address within the window alerts, naming the four.
    const alert = (await use('192.0.2.6')).raised
    expect(alert).toMatchObject([{ detector: 'sharedKey', level: 1, value: 4 }])
    expect(alert[0]!.addresses!.sort()).toEqual(['192.0.2.3', '192.0.2.4', '192.0.2.5', '192.0.2.6'])
  })
})

describe('memory and Redis stores count near-identical prompts alike', () => {
  // Long enough (~85 words) that one changed word moves the SimHash by 0 to 4 bits.
  const parts = [
    'please summarise the following quarterly report for the board and list the three main risks you see in it then suggest what the finance team should do next quarter about each of them and how the board should follow the plan',
    'write a long poem about autumn leaves falling on a quiet pond in the early morning light while the village wakes up and the baker opens his shop and children walk to school along the river under the old bridge',
  ]
  const templates = [`${parts[0]} and then ${parts[1]}`, `${parts[1]} and then ${parts[0]}`]
  // Prompts from two templates with one word changed (near-identical), unrelated ones between.
  const prompts = Array.from({ length: 90 }, (_, i) =>
    i % 5 === 4
      ? `unrelated question number ${i} about topic ${i * 7}`
      : `${templates[i % 2]} attempt ${i % 8}`,
  )

  it.each([3, 6, 12])('nearDistance %i: the same detections, in the same order', async (nearDistance) => {
    const s = set({
      loop: {
        alertAt: 8,
        throttleAt: 16,
        blockAt: 30,
        nearDistance,
        nearFactor: 1.5,
        throttlePerMinute: 100,
      },
      spend: false,
    })
    const run = async (store: DetectorStore) => {
      const seen = []
      for (const prompt of prompts) {
        const o = await store.check('key:near', checkStep(s, { prompt, isKey: false })!)
        seen.push({ raised: o.raised, refused: o.refused?.detector })
      }
      return seen
    }
    const memory = await run(new MemoryDetectorStore())
    const redisSeen = await run(
      new RedisDetectorStore({ client: countedClient().client, prefix: `nd${++n}:` }),
    )
    // Some levels come from near-identical prompts (their threshold × 1.5), not only identical ones.
    expect(memory.flatMap((o) => o.raised).some((r) => r.threshold === 12)).toBe(true)
    expect(redisSeen).toEqual(memory)
  })
})

describe.each(kinds)('%s detector store: SimHashes within 3 bits', (_kind, make) => {
  // Quarters: hi's low and high 16 bits, lo's low and high 16 bits.
  const flips = [
    [0x1, 0],
    [0x10000, 0],
    [0, 0x1],
    [0, 0x10000],
  ] as const
  it.each([0, 1, 2, 3])('agreeing on quarter %i only, count as near-identical', async (q) => {
    const store = make()
    const s = set({ loop: { alertAt: 4, throttleAt: 0, blockAt: 0, nearDistance: 3 }, spend: false })
    const step = checkStep(s, { prompt: 'x', isKey: false })!
    const at = (hash: string, hi: number, lo: number) => ({ ...step, loop: { ...step.loop!, hash, hi, lo } })
    const hi = 0x12345678
    const lo = 0x9abcdef0
    // One bit flipped in each quarter but q: 3 bits from the first.
    let vhi = hi
    let vlo = lo
    for (const [i, [fh, fl]] of flips.entries()) {
      if (i === q) continue
      vhi = (vhi ^ fh) >>> 0
      vlo = (vlo ^ fl) >>> 0
    }
    const raised = [...(await store.check('key:q', at('aaaaaaaa00000000', hi, lo))).raised]
    for (let i = 0; i < 5; i++)
      raised.push(...(await store.check('key:q', at(`bbbbbbbb0000000${i}`, vhi, vlo))).raised)
    // The sixth is near 6 (itself, four like it, and the first): the near threshold 4 × 1.5.
    expect(raised).toEqual([{ detector: 'loop', level: 1, value: 6, threshold: 6 }])
  })
})

describe('Redis detector store: a record waits for the next check', () => {
  it('and goes with it, in order: the check sees what the record raised', async () => {
    const { client, scriptCalls } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `r${++n}:`, recordLingerMs: 2000 })
    const s = set({
      spend: { bucketMs: 60_000, sustainMs: 60_000, floorPerMinute: 10, factor: 10 },
      loop: false,
    })
    await store.seed('key:s', 100)
    const before = scriptCalls()
    const recorded = store.record('key:s', recordStep(s, { tokens: 2000, usd: 0 }, 0.1)!)
    // A later turn: the record has not gone yet.
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
    const [raised, outcome] = await Promise.all([
      recorded,
      store.check('key:s', checkStep(s, { isKey: true })!),
    ])
    expect(scriptCalls() - before).toBe(1)
    // One script call, one clock: 2,000 tokens is 20× the baseline of 100, held at once.
    expect(raised).toMatchObject([{ detector: 'spend', level: THROTTLE }])
    expect(outcome.refused?.detector).toBe('spend')
  })

  it('alone, it goes once it has waited', async () => {
    const { client, scriptCalls } = countedClient()
    const store = new RedisDetectorStore({ client, prefix: `r${++n}:`, recordLingerMs: 20 })
    const s = set({ loop: false })
    const before = scriptCalls()
    expect(await store.record('key:r', recordStep(s, { tokens: 5, usd: 0 }, 0.1)!)).toEqual([])
    expect(scriptCalls() - before).toBe(1)
    expect(() => new RedisDetectorStore({ client, recordLingerMs: -1 })).toThrow(/recordLingerMs/)
  })
})

describe.each(kinds)(
  '%s detector store: one key from a few addresses, many requests at once',
  (_kind, make) => {
    it('each address counted once; the alert on the request of the fourth, naming four', async () => {
      const store = make()
      const s = set({ sharedKey: { alertAt: 4, factor: 0 }, loop: false, spend: false })
      const order = ['a', 'b', 'a', 'c', 'a', 'b', 'd', 'a', 'e', 'd'].map(
        (x) => `198.51.100.${x.charCodeAt(0)}`,
      )
      const outs = await Promise.all(
        order.map((address) => store.check('key:few', checkStep(s, { address, isKey: true })!)),
      )
      const raised = outs.map((o, i) => [i, o.raised] as const).filter(([, r]) => r.length > 0)
      expect(raised.map(([i]) => i)).toEqual([6])
      expect(raised[0]![1]).toMatchObject([{ detector: 'sharedKey', level: 1, value: 4, threshold: 4 }])
      expect(raised[0]![1][0]!.addresses).toHaveLength(4)
      // The cap (alertAt + 1 = 5) takes the fifth, e.
      expect((await store.inspect('key:few')).addresses).toHaveLength(5)
    })
  },
)
