/**
 * The outage options of the config (validated like the rest, errors naming the path), each tier's
 * effective failMode, routing of the HTTP core's ops to their tier's store, and /metrics and
 * /readyz on a gateway with the in-memory store.
 */
import { describe, expect, it } from 'vitest'
import { ConfigError, parseConfig } from '../../src/gateway/config/load.js'
import { startGateway } from '../../src/gateway/index.js'
import { outagePolicy } from '../../src/gateway/store.js'
import { Sluice } from '../../src/http/index.js'
import { slidingWindow } from '../../src/index.js'
import { MemoryStore } from '../../src/store/memory.js'
import { chat, metricSum } from './serve-process.js'

function issuesOf(input: unknown, env?: Record<string, string>): string[] {
  try {
    parseConfig(input, env ? { env } : {})
  } catch (error) {
    if (error instanceof ConfigError) return error.issues
    throw error
  }
  return []
}

describe('outage options in the config', () => {
  it('fills in defaults, and gives each tier its own failMode or the store-wide one', () => {
    const plain = parseConfig({ store: { type: 'redis', url: 'redis://127.0.0.1:6390' } })
    expect(plain.store).toEqual({ type: 'redis', url: 'redis://127.0.0.1:6390' })
    expect(outagePolicy(plain)).toEqual({
      timeoutMs: 100,
      failMode: 'closed',
      instances: 1,
      blockedCache: { maxAgeMs: 1000, maxEntries: 10_000 },
      tiers: { anonymous: 'closed', authenticated: 'closed', premium: 'closed', service: 'closed' },
    })
    expect(plain.shutdown).toEqual({ deadline: 25_000 })
    expect(plain.metrics).toEqual({ enabled: true, process: true })

    const tuned = parseConfig({
      store: {
        type: 'redis',
        nodes: ['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000'],
        timeout: '250ms',
        failMode: 'local',
        instances: 3,
        blockedCache: { maxAge: '2s', maxEntries: 500 },
      },
      tiers: {
        anonymous: { failMode: 'closed' },
        team: {
          scope: 'key',
          failMode: 'open',
          limits: { hourly: { kind: 'fixedWindow', limit: 5, window: '1h' } },
        },
      },
      shutdown: { deadline: '10s' },
    })
    expect(outagePolicy(tuned)).toEqual({
      timeoutMs: 250,
      failMode: 'local',
      instances: 3,
      blockedCache: { maxAgeMs: 2000, maxEntries: 500 },
      tiers: {
        anonymous: 'closed',
        authenticated: 'local',
        premium: 'local',
        service: 'local',
        team: 'open',
      },
    })
    expect(tuned.shutdown.deadline).toBe(10_000)
    expect(
      outagePolicy(parseConfig({ store: { type: 'redis', url: 'redis://x', blockedCache: false } })),
    ).toMatchObject({ blockedCache: false })
    expect(outagePolicy(parseConfig({}))).toBeUndefined()
  })

  it('names the bad path of every wrong outage option', () => {
    const redis = { type: 'redis', url: 'redis://127.0.0.1:6379' }
    expect(issuesOf({ tiers: { service: { failMode: 'sometimes' } } })[0]).toMatch(
      /^tiers\.service\.failMode: /,
    )
    expect(issuesOf({ store: { ...redis, failMode: 'maybe' } })[0]).toMatch(/^store\.failMode: /)
    expect(issuesOf({ store: { ...redis, timeout: 'soon' } })[0]).toMatch(
      /^store\.timeout: expected a duration/,
    )
    expect(issuesOf({ store: { ...redis, timeout: 0 } })[0]).toMatch(/^store\.timeout: /)
    expect(issuesOf({ store: { ...redis, instances: 0 } })[0]).toMatch(/^store\.instances: /)
    expect(issuesOf({ store: { ...redis, instances: 1.5 } })[0]).toMatch(/^store\.instances: /)
    expect(issuesOf({ store: { ...redis, blockedCache: { maxAge: '-1s' } } })[0]).toMatch(
      /^store\.blockedCache\.maxAge: /,
    )
    expect(issuesOf({ store: { ...redis, blockedCache: 'on' } })[0]).toBe(
      'store.blockedCache: expected false or { maxAge, maxEntries }',
    )
    expect(issuesOf({ store: { ...redis, blockedCache: { size: 5 } } })[0]).toMatch(
      /blockedCache\.size: unknown option/,
    )
    expect(issuesOf({ store: { ...redis, nodes: ['redis://a:1'] } })[0]).toMatch(
      /^store: .*exactly one of url .* or nodes/,
    )
    expect(issuesOf({ store: { type: 'redis' } })[0]).toMatch(/^store: .*exactly one of url/)
    expect(issuesOf({ store: { type: 'redis', nodes: ['http://a:1'] } })[0]).toMatch(
      /^store\.nodes\.0: expected a redis:\/\//,
    )
    expect(issuesOf({ store: { type: 'memory', failMode: 'open' } })[0]).toMatch(
      /store\.failMode: unknown option/,
    )
    expect(issuesOf({ shutdown: { deadline: 'later' } })[0]).toMatch(
      /^shutdown\.deadline: expected a duration/,
    )
    expect(issuesOf({ metrics: { enabled: 'yes' } })[0]).toMatch(/^metrics\.enabled: /)
  })

  it('SLUICE_REDIS_URL moves the store, keeping the outage options of the file', () => {
    const config = parseConfig(
      { store: { type: 'redis', nodes: ['redis://a:7000'], failMode: 'open', timeout: '50ms' } },
      { env: { SLUICE_REDIS_URL: 'redis://127.0.0.1:6390' } },
    )
    expect(config.store).toEqual({
      type: 'redis',
      url: 'redis://127.0.0.1:6390',
      failMode: 'open',
      timeout: 50,
    })
    const fromMemory = parseConfig(
      { store: { type: 'memory', maxKeys: 10 } },
      { env: { SLUICE_REDIS_URL: 'redis://h:1' } },
    )
    expect(fromMemory.store).toEqual({ type: 'redis', url: 'redis://h:1' })
  })
})

describe('a store per tier', () => {
  it("sends each tier's ops (key overrides and failed-auth counting included) to that tier's store", async () => {
    const free = new MemoryStore()
    const paid = new MemoryStore()
    const auth = new MemoryStore()
    const rest = new MemoryStore()
    const limits = { minute: slidingWindow({ limit: 5, windowMs: 60_000 }) }
    const tiers = {
      anonymous: { scope: 'ip' as const, limits },
      free: { scope: 'key' as const, limits },
      paid: { scope: 'key' as const, limits },
    }
    const big = {
      id: 'big',
      tier: 'paid',
      limits: { minute: slidingWindow({ limit: 50, windowMs: 60_000 }) },
    }
    const sluice = new Sluice({
      store: rest,
      prefix: 'r:',
      tiers: { ...tiers, free: { ...tiers.free, store: free }, paid: { ...tiers.paid, store: paid } },
      failedAuth: { store: auth },
      keys: [{ hash: 'a'.repeat(64), ...big }],
      logger: false,
    })
    await sluice.tierLimiter('free').consume('key:f')
    await sluice.tierLimiter('paid').consume('key:p')
    await sluice.tierLimiter('anonymous').consume('ip:1.2.3.4')
    await sluice.failedAuth!.consume('ip:1.2.3.4')
    const identity = {
      kind: 'key' as const,
      subject: 'key:big',
      tier: 'paid',
      scope: 'key' as const,
      key: big,
    }
    await sluice.limiterFor({ ...identity, ip: undefined, ipGroup: undefined }).consume('key:big')

    /** What one store alone holds for a subject of a tier. */
    const remaining = async (store: MemoryStore, tier: string, subject: string) => {
      const alone = new Sluice({ store, prefix: 'r:', tiers, logger: false })
      return (await alone.tierLimiter(tier).peek(subject, { requests: 0 })).limits[0]!.remaining
    }
    expect(await remaining(free, 'free', 'key:f')).toBe(4)
    expect(await remaining(paid, 'paid', 'key:p')).toBe(4)
    expect(await remaining(paid, 'paid', 'key:big')).toBe(4) // a key override keeps its tier's store
    expect(await remaining(free, 'free', 'key:p')).toBe(5)
    expect(await remaining(rest, 'paid', 'key:p')).toBe(5)
    expect(await remaining(rest, 'anonymous', 'ip:1.2.3.4')).toBe(4)
    expect(auth.size).toBeGreaterThan(0)
  })
})

describe('/metrics and /readyz with the in-memory store', () => {
  it('counts decisions and charges once, and is ready without a store to wait for', async () => {
    const gateway = await startGateway({ port: 0, ledger: { path: false } }, { env: {}, logger: false })
    try {
      const ok = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: chat('hello') })
      const usage = ((await ok.json()) as { usage: { total_tokens: number } }).usage
      expect(ok.status).toBe(200)
      expect(ok.headers.get('x-sluice-fallback')).toBeNull()
      const metrics = await fetch(`${gateway.url}/metrics`)
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/)
      const text = await metrics.text()
      expect(
        metricSum(text, 'sluice_decisions_total', { tier: 'anonymous', outcome: 'allowed', source: 'store' }),
      ).toBe(1)
      expect(metricSum(text, 'sluice_charged_total', { tier: 'anonymous', unit: 'tokens' })).toBe(
        usage.total_tokens,
      )
      expect(metricSum(text, 'sluice_in_flight_requests', { tier: 'anonymous' })).toBe(0)
      expect(text).toContain('sluice_process_cpu_seconds_total')
      expect(gateway.guard).toBeUndefined()
      const ready = await fetch(`${gateway.url}/readyz`)
      expect({ status: ready.status, body: await ready.json() }).toEqual({
        status: 200,
        body: { status: 'ready', store: 'memory' },
      })
    } finally {
      await gateway.close()
    }
    const off = await startGateway(
      { port: 0, ledger: { path: false }, metrics: { enabled: false } },
      { env: {}, logger: false },
    )
    try {
      expect((await fetch(`${off.url}/metrics`)).status).toBe(404)
    } finally {
      await off.close()
    }
  })
})
