/**
 * The abuse detectors through the gateway, with the official openai client: a prompt loop is
 * throttled after the configured count, a spend spike over a seeded baseline is held to it, one
 * key from 50 addresses raises exactly one alert across two instances on one Redis (and a block
 * when configured), shadow mode reports and charges nothing extra, and a normal mixed workload
 * raises nothing.
 */
import OpenAI, { type APIError, PermissionDeniedError, RateLimitError } from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import type { DetectionEvent } from '../../src/http/index.js'
import { clearOfWindowEdge, MINUTE } from '../helpers/window-edge.js'
import { newKey, STORE_KINDS, sharedRedis, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

afterAll(stopRedis)

const tier = {
  scope: 'key' as const,
  limits: {
    requests: { kind: 'slidingWindow' as const, unit: 'requests', limit: 10_000, window: '1h' },
    tokens: { kind: 'slidingWindow' as const, unit: 'tokens', limit: 10_000_000, window: '1h' },
  },
  block: false as const,
}

/** Detectors tuned for a test's few seconds (the same for the attacks and the normal workload). */
const detectors = {
  loop: { alertAt: 5, throttleAt: 5, blockAt: 0, throttlePerMinute: 1, window: '5m' },
  // A new key's baseline is the floor: 1,000 tokens a second here, far above these tests' calls.
  spend: { bucket: '1s', sustain: '1s', factor: 10, floorPerMinute: 60_000, halfLife: '1d' },
  sharedKey: { alertAt: 10, window: '1m' },
  scraping: false,
}

function config(
  keys: { hash: string; tier: string; id: string }[],
  extra: GatewayConfigInput = {},
): GatewayConfigInput {
  return {
    tiers: { service: tier },
    auth: { keys, trustProxy: ['loopback'] },
    detectors,
    ...extra,
  }
}

function watch(gw: TestGateway): DetectionEvent[] {
  const seen: DetectionEvent[] = []
  gw.sluice.events.on('detection', (e) => seen.push(e))
  return seen
}

const chat = (client: OpenAI, content: string, headers: Record<string, string> = {}) =>
  client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 8 },
    { headers },
  )

describe.each(STORE_KINDS)('abuse detectors through the gateway (%s store)', (kind) => {
  it('a loop of identical prompts is throttled after the configured count; the 429 says why and not to retry', async () => {
    const k = newKey('service', `loop-${kind}`)
    const gw = await startTestGateway(kind, config([k.entry]))
    try {
      const seen = watch(gw)
      // The SDK's own retries are on: x-should-retry: false must stop them.
      const client = new OpenAI({ apiKey: k.key, baseURL: `${gw.url}/v1`, maxRetries: 2 })
      // The throttle keeps one request a clock minute: no minute turns between the 5th call and the
      // refusals this test expects of the next ones.
      await clearOfWindowEdge(MINUTE, 20_000)
      for (let i = 0; i < 5; i++) await chat(client, 'Are we there yet?')
      // The throttle keeps one request a minute: the 5th was it.
      let refused: unknown
      for (let i = 0; i < 2 && refused === undefined; i++) {
        await chat(client, 'Are we there yet?').catch((e: unknown) => {
          refused = e
        })
      }
      expect(refused).toBeInstanceOf(RateLimitError)
      const e = refused as RateLimitError
      expect(e.code).toBe('prompt_loop')
      expect(e.headers?.get('x-should-retry')).toBe('false')
      expect(e.message).toMatch(/same prompt/)
      await gw.settled()
      // One call refused, not three: the SDK did not retry.
      expect((await gw.ledgerRecords()).filter((r) => r.status === 200).length).toBeLessThanOrEqual(6)
      // A different prompt is refused too: the subject is throttled, not the prompt.
      await expect(chat(client, 'Something else entirely')).rejects.toBeInstanceOf(RateLimitError)
      expect(seen.map((d) => [d.detector, d.level, d.value])).toEqual([['loop', 'throttle', 5]])
      // Cleared by an operator: served again.
      await gw.sluice.detectors!.store.clear(`key:loop-${kind}`)
      await expect(chat(client, 'Something else entirely')).resolves.toBeDefined()
    } finally {
      await gw.close()
    }
  })

  it('a spend spike 10× over a seeded baseline is held to the baseline until cleared', async () => {
    const k = newKey('service', `spend-${kind}`)
    // This key's floor is low: its seeded baseline decides.
    const gw = await startTestGateway(
      kind,
      config([k.entry], {
        detectors: {
          ...detectors,
          keys: { [`spend-${kind}`]: { spend: { ...detectors.spend, floorPerMinute: 60 } } },
        },
      }),
    )
    try {
      const seen = watch(gw)
      const subject = `key:spend-${kind}`
      const store = gw.sluice.detectors!.store
      const client = new OpenAI({ apiKey: k.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      // What one call costs, then a baseline of one such call per second.
      await chat(client, 'prompt 0')
      await gw.settled()
      const perCall = (await gw.ledgerRecords())[0]!.tokens
      await store.seed(subject, perCall)
      // The spike: many calls at once, varied prompts (no loop), until the detector holds the key.
      let held: RateLimitError | undefined
      for (let round = 0; round < 20 && held === undefined; round++) {
        const results = await Promise.allSettled(
          Array.from({ length: 15 }, (_, i) => chat(client, `report ${round}-${i}: what changed?`)),
        )
        await gw.settled()
        await gw.sluice.flush()
        for (const r of results) {
          if (r.status === 'rejected' && r.reason instanceof RateLimitError) held = r.reason
        }
        if (held === undefined && seen.some((d) => d.detector === 'spend')) {
          await chat(client, 'after the spike').catch((e: unknown) => {
            if (e instanceof RateLimitError) held = e
          })
        }
      }
      expect(seen.filter((d) => d.detector === 'spend').map((d) => d.level)).toEqual(['throttle'])
      expect(held?.code).toBe('spend_spike')
      expect(held?.headers?.get('x-should-retry')).toBe('false')
      // Held to the baseline: in one bucket, no more than one baseline's worth (one call) passes
      // once the bucket is spent; the view shows the hold until an operator clears it.
      expect((await store.inspect(subject)).flags.spend?.lv).toBe(2)
      await store.clear(subject, 'spend')
      expect((await store.inspect(subject)).flags.spend).toBeUndefined()
    } finally {
      await gw.close()
    }
  })

  it('shadow mode reports the loop and charges nothing extra', async () => {
    const k = newKey('service', `shadow-${kind}`)
    const gw = await startTestGateway(kind, config([k.entry], { detectors: { ...detectors, shadow: true } }))
    try {
      const seen = watch(gw)
      const client = new OpenAI({ apiKey: k.key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      for (let i = 0; i < 8; i++) await chat(client, 'Are we there yet?')
      await gw.settled()
      expect(seen.map((d) => [d.detector, d.level, d.shadow])).toEqual([['loop', 'throttle', true]])
      expect(await gw.used('service', `key:shadow-${kind}`, 'requests')).toBe(8)
      const ledger = await gw.ledgerRecords()
      const tokens = ledger.reduce((sum, r) => sum + r.tokens, 0)
      expect(await gw.used('service', `key:shadow-${kind}`, 'tokens')).toBeCloseTo(tokens, 6)
    } finally {
      await gw.close()
    }
  })

  it('a normal mixed workload raises no detection', async () => {
    const keys = [newKey('service', `normal-a-${kind}`), newKey('service', `normal-b-${kind}`)]
    const gw = await startTestGateway(kind, config(keys.map((k) => k.entry)))
    try {
      const seen = watch(gw)
      const clients = keys.map((k) => new OpenAI({ apiKey: k.key, baseURL: `${gw.url}/v1`, maxRetries: 0 }))
      const topics = ['rivers', 'gates', 'tides', 'locks', 'canals', 'weirs', 'dams', 'ports']
      for (let i = 0; i < 48; i++) {
        const address = `192.0.2.${(i % 3) + 10}`
        const text = `Question ${i}: tell me one fact about ${topics[i % topics.length]} number ${i * 13}.`
        await chat(clients[i % 2]!, text, { 'x-forwarded-for': address })
        // A repeated prompt now and then is normal (under the loop count).
        if (i % 12 === 0) await chat(clients[i % 2]!, 'Hello!', { 'x-forwarded-for': address })
      }
      await gw.settled()
      await gw.sluice.flush()
      expect(seen).toEqual([])
    } finally {
      await gw.close()
    }
  })
})

describe('one key from 50 addresses, two gateway instances on one Redis', () => {
  it('raises exactly one alert naming the addresses, and blocks when configured', async () => {
    const alertOnly = newKey('service', 'shared-alert')
    const blocked = newKey('service', 'shared-block')
    const prefix = `shared-${process.pid}:`
    const cfg = config([alertOnly.entry, blocked.entry], {
      prefix,
      detectors: {
        ...detectors,
        sharedKey: { alertAt: 50, window: '1m' },
        keys: { 'shared-block': { sharedKey: { alertAt: 50, blockAt: 50, window: '1m' } } },
      },
    })
    await sharedRedis()
    const gws = [await startTestGateway('redis', cfg), await startTestGateway('redis', cfg)]
    try {
      const seen = gws.map(watch)
      const statuses: Record<string, number[]> = {}
      for (const key of [alertOnly, blocked]) {
        const clients = gws.map(
          (gw) => new OpenAI({ apiKey: key.key, baseURL: `${gw.url}/v1`, maxRetries: 0 }),
        )
        const results = await Promise.allSettled(
          Array.from({ length: 50 }, (_, i) =>
            chat(clients[i % 2]!, `question ${i}`, { 'x-forwarded-for': `198.51.100.${i + 1}` }),
          ),
        )
        statuses[key.entry.id] = results.map((r) =>
          r.status === 'fulfilled' ? 200 : (r.reason as APIError).status!,
        )
      }
      // The alert-only key was served every time; the other was served 49 times, and the call
      // from its 50th address was the one refused by the block it started.
      expect(statuses['shared-alert']!.every((s) => s === 200)).toBe(true)
      expect(statuses['shared-block']!.filter((s) => s === 403)).toHaveLength(1)
      expect(statuses['shared-block']!.filter((s) => s === 200)).toHaveLength(49)
      const all = seen.flat()
      const forAlert = all.filter((d) => d.subject === 'key:shared-alert')
      expect(forAlert.map((d) => [d.detector, d.level, d.value])).toEqual([['sharedKey', 'alert', 50]])
      expect(new Set(forAlert[0]!.addresses)).toEqual(
        new Set(Array.from({ length: 50 }, (_, i) => `198.51.100.${i + 1}`)),
      )
      const forBlock = all.filter((d) => d.subject === 'key:shared-block')
      expect(forBlock.map((d) => [d.detector, d.level])).toEqual([['sharedKey', 'block']])
      // The blocked key is refused on both instances, from any address, with a 403 that says why.
      for (const gw of gws) {
        const client = new OpenAI({ apiKey: blocked.key, baseURL: `${gw.url}/v1`, maxRetries: 2 })
        const error = await chat(client, 'again', { 'x-forwarded-for': '198.51.100.1' }).catch(
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(PermissionDeniedError)
        expect((error as APIError).code).toBe('shared_key')
        expect((error as APIError).headers?.get('x-should-retry')).toBe('false')
      }
      // The alert-only key goes on working.
      const ok = new OpenAI({ apiKey: alertOnly.key, baseURL: `${gws[0]!.url}/v1`, maxRetries: 0 })
      await expect(chat(ok, 'still fine', { 'x-forwarded-for': '198.51.100.1' })).resolves.toBeDefined()
      // Both instances see the one detection the store kept.
      const recent = await gws[1]!.sluice.detectors!.store.recent(10)
      expect(recent.filter((r) => r.subject === 'key:shared-alert')).toHaveLength(1)
    } finally {
      for (const gw of gws) await gw.close()
    }
  })
})

describe('a shared-key threshold learned from each key, two gateway instances on one Redis', () => {
  it('a key usually used from 3 addresses raises exactly one alert at a jump to 15; one usually used from 30 none', async () => {
    const few = newKey('service', 'usual-few')
    const many = newKey('service', 'usual-many')
    const cfg = config([few.entry, many.entry], {
      prefix: `usual-${process.pid}:`,
      detectors: {
        ...detectors,
        loop: false,
        sharedKey: { alertAt: 100, window: '1s', factor: 3, minAddresses: 8, warmup: 3 },
      },
    })
    await sharedRedis()
    const gws = [await startTestGateway('redis', cfg), await startTestGateway('redis', cfg)]
    try {
      const seen = gws.map(watch)
      const clientsOf = (key: string) =>
        gws.map((gw) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 }))
      const fewClients = clientsOf(few.key)
      const manyClients = clientsOf(many.key)
      const use = (clients: OpenAI[], addresses: string[]) =>
        Promise.all(
          addresses.map((address, i) =>
            chat(clients[i % 2]!, `q ${address}`, { 'x-forwarded-for': address }),
          ),
        )
      const range = (n: number, net: string) => Array.from({ length: n }, (_, i) => `${net}.${i + 1}`)
      const store = gws[0]!.sluice.detectors!.store
      // Four windows of history: each key from its usual addresses, on both instances.
      for (let w = 0; w < 4; w++) {
        const now = await store.now()
        await new Promise((r) => setTimeout(r, 1000 - (now % 1000) + 20))
        await Promise.all([use(fewClients, range(3, '192.0.2')), use(manyClients, range(30, '198.51.100'))])
      }
      for (const gw of gws) await gw.sluice.flush()
      expect(seen.flat()).toEqual([])
      // The jump: 15 new addresses for each key, spread over both instances.
      await Promise.all([use(fewClients, range(15, '203.0.113')), use(manyClients, range(15, '233.252.0'))])
      for (const gw of gws) await gw.sluice.flush()
      const all = seen.flat()
      expect(all.map((d) => [d.subject, d.detector, d.level])).toEqual([
        ['key:usual-few', 'sharedKey', 'alert'],
      ])
      expect(all[0]!.threshold).toBeLessThanOrEqual(9)
      expect(all[0]!.message).toMatch(/learned from its history/)
      expect(all[0]!.addresses!.length).toBe(all[0]!.value)
      expect((await store.inspect('key:usual-many')).usualAddresses).toBeGreaterThan(20)
    } finally {
      for (const gw of gws) await gw.close()
    }
  })
})
