import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { fixedWindow, Limiter, MemoryStore, SluiceInputError, tokenBucket } from '../../src/index.js'
import { SluiceMetrics } from '../../src/metrics.js'
import { BlockedKeyCache } from '../../src/store/blocked-cache.js'
import { GuardedStore } from '../../src/store/guarded.js'

/** The value of one sample of a metric, found by its labels. */
async function value(metrics: SluiceMetrics, name: string, labels: Record<string, string> = {}) {
  const all = await metrics.registry.getMetricsAsJSON()
  // A histogram's _count and _sum are samples of the histogram itself.
  const metric = all.find((m) => m.name === name) ?? all.find((m) => name.startsWith(`${m.name}_`))
  if (metric === undefined) throw new Error(`no metric ${name}`)
  const values = metric.values as {
    value: number
    labels: Record<string, string | number>
    metricName?: string
  }[]
  const matching = values.filter(
    (v) =>
      (v.metricName ?? metric.name) === name && Object.entries(labels).every(([k, x]) => v.labels[k] === x),
  )
  return matching.reduce((sum, v) => sum + v.value, 0)
}

describe('SluiceMetrics', () => {
  it('counts decisions by tier, denying limit, outcome and source, with alerts and blocks', async () => {
    const metrics = new SluiceMetrics()
    const limiter = new Limiter({
      store: new MemoryStore(),
      policy: 'free',
      limits: { hourly: fixedWindow({ limit: 5, windowMs: 3_600_000 }) },
      alertAt: 0.8,
      block: { after: 2, withinMs: 60_000, durationsMs: [60_000] },
    })
    for (let i = 0; i < 9; i++) metrics.recordDecision(await limiter.consume('u'))
    // 5 allowed, 2 denied by "hourly" (the second starts a block), then 2 denied by the block
    expect(await value(metrics, 'sluice_decisions_total', { tier: 'free', outcome: 'allowed' })).toBe(5)
    expect(
      await value(metrics, 'sluice_decisions_total', { tier: 'free', outcome: 'denied', limit: 'hourly' }),
    ).toBe(1)
    expect(await value(metrics, 'sluice_decisions_total', { outcome: 'blocked', limit: 'block' })).toBe(3)
    expect(await value(metrics, 'sluice_decisions_total', { source: 'store' })).toBe(9)
    expect(await value(metrics, 'sluice_alerts_total', { tier: 'free', limit: 'hourly' })).toBe(1)
    expect(await value(metrics, 'sluice_blocks_total', { tier: 'free' })).toBe(1)

    // Each sample carries exactly its own four labels.
    const decisions = (await metrics.registry.getMetricsAsJSON()).find(
      (m) => m.name === 'sluice_decisions_total',
    )!
    const samples = decisions.values.map((v) => ({ ...v.labels, value: v.value }))
    expect(samples).toEqual(
      expect.arrayContaining([
        { tier: 'free', limit: 'none', outcome: 'allowed', source: 'store', value: 5 },
        { tier: 'free', limit: 'hourly', outcome: 'denied', source: 'store', value: 1 },
        { tier: 'free', limit: 'block', outcome: 'blocked', source: 'store', value: 3 },
      ]),
    )
    expect(samples).toHaveLength(3)

    metrics.recordUnavailable('paid')
    expect(await value(metrics, 'sluice_decisions_total', { tier: 'paid', outcome: 'unavailable' })).toBe(1)
  })

  it('counts units charged, and requests in flight', async () => {
    const metrics = new SluiceMetrics()
    metrics.recordCharge('service', { tokens: 1500, usd: 0.0025, requests: 1 })
    metrics.recordCharge('service', { tokens: 500, usd: 0 })
    expect(await value(metrics, 'sluice_charged_total', { tier: 'service', unit: 'tokens' })).toBe(2000)
    expect(await value(metrics, 'sluice_charged_total', { unit: 'usd' })).toBeCloseTo(0.0025, 10)

    const a = metrics.trackInFlight('service')
    const b = metrics.trackInFlight('service')
    expect(await value(metrics, 'sluice_in_flight_requests', { tier: 'service' })).toBe(2)
    a()
    a() // ending twice counts once
    expect(await value(metrics, 'sluice_in_flight_requests', { tier: 'service' })).toBe(1)
    b()
    expect(await value(metrics, 'sluice_in_flight_requests', { tier: 'service' })).toBe(0)
  })

  it('records store call durations, the store state, and blocked-key cache hits', async () => {
    const metrics = new SluiceMetrics()
    const guard = new GuardedStore({ store: new MemoryStore(), failMode: 'open' })
    const cache = new BlockedKeyCache()
    metrics.watchStore(guard)
    metrics.watchCache(cache)
    const limiter = new Limiter({
      store: cache.wrap(guard),
      policy: 'p',
      limits: { b: tokenBucket({ capacity: 1, refillPerSecond: 1e-6 }) },
    })
    for (let i = 0; i < 5; i++) await limiter.consume('x')
    expect(await value(metrics, 'sluice_store_call_duration_seconds_count', { outcome: 'ok' })).toBe(2)
    expect(await value(metrics, 'sluice_blocked_cache_hits_total')).toBe(3)
    expect(await value(metrics, 'sluice_blocked_cache_misses_total')).toBe(2)
    expect(await value(metrics, 'sluice_blocked_cache_entries')).toBe(1)
    expect(await value(metrics, 'sluice_store_up')).toBe(1)

    const { contentType, body } = await metrics.render()
    expect(contentType).toMatch(/^text\/plain/)
    expect(body).toMatch(/^sluice_blocked_cache_hits_total 3$/m)
    expect(body).toMatch(/^# TYPE sluice_store_call_duration_seconds histogram$/m)
  })

  it('adds to a registry it is given, under a prefix, and refuses bad options', async () => {
    const registry = new Registry()
    const metrics = new SluiceMetrics({ registry, prefix: 'gw_' })
    metrics.recordUnavailable('t')
    expect(await registry.metrics()).toMatch(/^gw_decisions_total\{.*tier="t".*\} 1$/m)
    expect(() => new SluiceMetrics({ prefix: 'bad prefix' })).toThrow(SluiceInputError)
    expect(() => new SluiceMetrics({ registry: {} as Registry })).toThrow(/registry/)
  })
})
