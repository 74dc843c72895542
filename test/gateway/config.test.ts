import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Accounting, TOKEN_KIND_UNITS } from '../../src/gateway/accounting.js'
import { ConfigError, loadConfig, parseConfig } from '../../src/gateway/config/load.js'
import { CHARGED_UNITS } from '../../src/gateway/config/schema.js'
import { parseDuration, parseSize } from '../../src/gateway/config/values.js'
import { checkConfig } from '../../src/gateway/index.js'
import { ModelTable } from '../../src/gateway/models.js'
import { PriceTable } from '../../src/gateway/prices.js'
import { startupWarnings } from '../../src/gateway/startup.js'
import { gatewayTiers } from '../../src/gateway/tiers.js'
import { IpResolver } from '../../src/http/ip.js'
import type { Limiter } from '../../src/limiter.js'

function issuesOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (error) {
    if (error instanceof ConfigError) return error.issues
    throw error
  }
  throw new Error('expected a ConfigError')
}

function tmpDir(): string {
  return mkdtempSync(join(tmpdir(), 'sluice-config-'))
}

describe('config', () => {
  it('defaults: port 8787, memory store, mock upstream, default tiers, demo key on', () => {
    const config = parseConfig(undefined)
    expect(config.port).toBe(8787)
    expect(config.store).toEqual({ type: 'memory' })
    expect(config.defaultUpstream).toBe('mock')
    expect(config.upstreams.mock?.type).toBe('mock')
    expect(config.upstreams.openai?.type).toBe('openai')
    expect(config.auth).toEqual({ requireKey: false, demoKey: true, keys: [] })
    expect(config.accounting.onUpstreamError).toBe('chargePrompt')
    const tiers = gatewayTiers(config.tiers)
    expect(Object.keys(tiers).sort()).toEqual(['anonymous', 'authenticated', 'premium', 'service'])
    expect(tiers.service?.scope).toBe('key')
    expect(tiers.anonymous?.limits.inflight?.kind).toBe('concurrency')
  })

  it('names the bad path of every problem', () => {
    const issues = issuesOf(() =>
      parseConfig({
        port: 'eighty',
        tiers: {
          free: {
            scope: 'key',
            limits: { tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: -5, per: '1h' } },
          },
        },
        upstreams: { local: { type: 'openai', baseUrl: 'not a url' } },
        ledger: { maxSize: 'huge' },
        surprise: true,
      }),
    )
    const text = issues.join('\n')
    expect(text).toMatch(/^port: /m)
    expect(text).toMatch(/^tiers\.free\.limits\.tokens\.capacity: /m)
    expect(text).toMatch(/^upstreams\.local\.baseUrl: /m)
    expect(text).toMatch(/^ledger\.maxSize: .*"huge"/m)
    expect(text).toMatch(/^surprise: unknown option/m)
  })

  it('takes the calendar of database budgets as a fixed UTC offset, refusing a zone name', () => {
    expect(parseConfig({ database: { budgetUtcOffset: '+05:30' } }).database).toMatchObject({
      budgetUtcOffset: '+05:30',
    })
    expect(parseConfig({ database: {} }).database).toMatchObject({ budgetUtcOffset: 0 })
    const issues = issuesOf(() => parseConfig({ database: { budgetUtcOffset: 'Europe/Paris' } }))
    expect(issues.join('\n')).toMatch(/database\.budgetUtcOffset: .*fixed UTC offset/)
  })

  it('rejects a limit kind it does not know, naming it', () => {
    const issues = issuesOf(() =>
      parseConfig({ tiers: { service: { limits: { x: { kind: 'leakyBucket', limit: 1 } } } } }),
    )
    expect(issues.join('\n')).toMatch(/tiers\.service\.limits\.x\.kind: .*tokenBucket/)
  })

  it('cross-checks names: upstreams, tiers of keys, scopes of new tiers, duplicate keys', () => {
    const hash = 'a'.repeat(64)
    const issues = issuesOf(() =>
      parseConfig({
        defaultUpstream: 'nowhere',
        models: { 'llama*': { upstream: 'ollama' } },
        tiers: { gold: { limits: { hourly: { kind: 'fixedWindow', limit: 5, window: '1h' } } } },
        auth: {
          keys: [
            { hash, tier: 'platinum' },
            { hash: hash.toUpperCase(), tier: 'service' },
          ],
        },
      }),
    )
    const text = issues.join('\n')
    expect(text).toMatch(/^defaultUpstream: no upstream named "nowhere"/m)
    expect(text).toMatch(/^models\.llama\*\.upstream: no upstream named "ollama"/m)
    expect(text).toMatch(/^tiers\.gold\.scope: /m)
    expect(text).toMatch(/^auth\.keys\.0\.tier: no tier named "platinum"/m)
    expect(text).toMatch(/^auth\.keys\.1\.hash: the same key as auth\.keys\.0/m)
  })

  it('refuses a tier whose limits all got removed', () => {
    const issues = issuesOf(() =>
      parseConfig({ tiers: { premium: { limits: { hourly: null, tokens: null, inflight: null } } } }),
    )
    expect(issues).toContain('tiers.premium.limits: a tier needs at least one limit')
  })

  it('merges tier limits by name and builds them with the core factories', () => {
    const config = parseConfig({
      tiers: {
        service: {
          limits: {
            budget: { kind: 'fixedWindow', unit: 'usd', limit: 5, window: '1d' },
            burst: null,
            inflight: { kind: 'concurrency', limit: 3 },
          },
        },
        free: {
          scope: 'key',
          limits: { tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 3600, per: '1h' } },
        },
      },
    })
    const tiers = gatewayTiers(config.tiers)
    expect(Object.keys(tiers.service!.limits).sort()).toEqual(['budget', 'hourly', 'inflight', 'tokens'])
    expect(tiers.service!.limits.budget).toEqual({
      kind: 'fixedWindow',
      unit: 'usd',
      limit: 5,
      windowMs: 86_400_000,
    })
    expect(tiers.service!.limits.inflight).toMatchObject({ kind: 'concurrency', limit: 3 })
    expect(tiers.free!.limits.tokens).toMatchObject({
      kind: 'tokenBucket',
      capacity: 3600,
      refillPerSecond: 1,
    })
  })

  it('applies environment overrides and names the variable when one is bad', () => {
    const config = parseConfig(
      { port: 1000 },
      {
        env: {
          SLUICE_PORT: '9999',
          SLUICE_REDIS_URL: 'redis://127.0.0.1:6390',
          SLUICE_REQUIRE_KEY: 'true',
          SLUICE_UPSTREAM: 'openai',
          SLUICE_UPSTREAM_URL: 'http://localhost:11434/v1',
          SLUICE_LEDGER: 'off',
        },
      },
    )
    expect(config.port).toBe(9999)
    expect(config.store).toEqual({ type: 'redis', url: 'redis://127.0.0.1:6390' })
    expect(config.auth.requireKey).toBe(true)
    expect(config.defaultUpstream).toBe('openai')
    expect(config.upstreams.openai).toMatchObject({ type: 'openai', baseUrl: 'http://localhost:11434/v1' })
    expect(config.ledger.path).toBe(false)

    expect(issuesOf(() => parseConfig({}, { env: { SLUICE_PORT: 'abc' } }))).toEqual([
      expect.stringMatching(/^port \(from SLUICE_PORT\): /),
    ])
    expect(issuesOf(() => parseConfig({}, { env: { SLUICE_REQUIRE_KEY: 'maybe' } }))[0]).toMatch(
      /^auth\.requireKey \(from SLUICE_REQUIRE_KEY\)/,
    )
  })

  it('loads sluice.yaml from the working directory, and reports YAML syntax errors with the file', () => {
    const dir = tmpDir()
    writeFileSync(join(dir, 'sluice.yaml'), 'port: 7000\nprices:\n  my-model: { input: 1, output: 2 }\n')
    const loaded = loadConfig({ cwd: dir, env: {} })
    expect(loaded.path).toBe(join(dir, 'sluice.yaml'))
    expect(loaded.config.port).toBe(7000)
    expect(loaded.config.prices['my-model']).toEqual({ input: 1, output: 2 })

    writeFileSync(join(dir, 'broken.yaml'), 'port: [1, 2\n')
    const error = (() => {
      try {
        loadConfig({ cwd: dir, path: 'broken.yaml', env: {} })
      } catch (e) {
        return e as ConfigError
      }
    })()
    expect(error).toBeInstanceOf(ConfigError)
    expect(error!.message).toContain('broken.yaml')

    expect(issuesOf(() => loadConfig({ cwd: dir, path: 'missing.yaml', env: {} }))[0]).toMatch(/not found/)
    expect(loadConfig({ cwd: tmpDir(), env: {} }).path).toBeUndefined()
  })

  it('parses durations and sizes, and refuses malformed ones', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('1.5s')).toBe(1500)
    expect(parseDuration('2h')).toBe(7_200_000)
    expect(parseDuration('1 d')).toBe(86_400_000)
    expect(parseDuration('soon')).toBeUndefined()
    expect(parseSize('10mb')).toBe(10 * 1024 * 1024)
    expect(parseSize('512KB')).toBe(512 * 1024)
    expect(parseSize('lots')).toBeUndefined()
  })

  it('accepts the example config shipped at the repository root', () => {
    const { config } = loadConfig({
      path: 'sluice.example.yaml',
      cwd: join(import.meta.dirname, '../..'),
      env: {},
    })
    expect(() => checkConfig(config)).not.toThrow()
    expect(Object.keys(gatewayTiers(config.tiers))).toContain('team')
    // As shipped it needs no network: every model goes to the built-in mock, and nothing warns.
    const models = new ModelTable(config)
    for (const model of ['gpt-4o-mini', 'gpt-5', 'llama3.1', 'Qwen/Qwen2.5-7B', 'anything'])
      expect(models.route(model).upstream).toBe('mock')
    expect(startupWarnings(config, {})).toEqual([])
  })

  it('reads an empty YAML section as "not set", but null inside limits as "remove this limit"', () => {
    const dir = tmpDir()
    writeFileSync(
      join(dir, 'sluice.yaml'),
      'auth:\n  keys:\ntiers:\n  premium:\n    limits:\n      tokens:\ngraduated:\n',
    )
    const { config } = loadConfig({ cwd: dir, env: {} })
    expect(config.auth.keys).toEqual([])
    expect(Object.keys(gatewayTiers(config.tiers).premium!.limits).sort()).toEqual(['hourly', 'inflight'])
  })

  it('reports limits the core refuses, and bad HTTP-layer options', () => {
    const config = parseConfig({ graduated: { deny: { ips: ['not-an-ip'] } } })
    expect(() => checkConfig(config)).toThrow(ConfigError)
    expect(() => checkConfig(config)).toThrow(/deny\.ips/)
  })

  it('refuses a limit unit no route ever charges, naming the path and the units that are charged', () => {
    const issues = issuesOf(() =>
      parseConfig({
        tiers: {
          service: { limits: { budget: { kind: 'fixedWindow', unit: 'dollars', limit: 50, window: '1d' } } },
        },
        auth: {
          keys: [
            {
              hash: 'b'.repeat(64),
              tier: 'service',
              limits: { t: { kind: 'tokenBucket', unit: 'token', capacity: 5, per: '1h' } },
            },
          ],
        },
      }),
    )
    expect(issues.sort()).toEqual([
      'auth.keys.0.limits.t.unit: no route ever charges the unit "token", so this limit would never apply; the gateway charges requests, tokens, usd, concurrent, input_tokens, output_tokens, cached_tokens',
      'tiers.service.limits.budget.unit: no route ever charges the unit "dollars", so this limit would never apply; the gateway charges requests, tokens, usd, concurrent, input_tokens, output_tokens, cached_tokens',
    ])
    for (const unit of CHARGED_UNITS) {
      expect(() =>
        parseConfig({
          tiers: { service: { limits: { x: { kind: 'fixedWindow', unit, limit: 5, window: '1h' } } } },
        }),
      ).not.toThrow()
    }
  })

  it('the units the config accepts are the ones every call is charged', () => {
    const accounting = new Accounting({
      prices: new PriceTable({}),
      ledger: undefined,
      onUpstreamError: 'chargePrompt',
    })
    // Token kinds are charged to a tier that limits them (a limiter refuses units it does not know).
    const limitsEveryKind = {
      definitions: TOKEN_KIND_UNITS.map((unit) => ({ unit })) as unknown as Limiter['definitions'],
    }
    const charged = Object.keys(
      accounting.reservationCosts('gpt-4o-mini', { promptTokens: 10, outputTokens: 10 }, limitsEveryKind),
    )
    // A concurrency limit takes one slot per call (the limiter's default for "concurrent").
    expect([...charged, 'concurrent'].sort()).toEqual([...CHARGED_UNITS].sort())
  })

  describe('auth.trustProxy', () => {
    const trust = (trustProxy: unknown, extra: Record<string, unknown> = {}) =>
      issuesOf(() => parseConfig({ auth: { trustProxy, ...extra } }))

    it('refuses true, saying why and what to give instead', () => {
      expect(trust(true)).toEqual([
        expect.stringMatching(
          /^auth\.trustProxy: true would trust every peer: any client could send X-Forwarded-For and choose its own address .* List your proxies' addresses or CIDRs/,
        ),
      ])
    })

    it('refuses ranges that hold every address, with or without a trusted user header', () => {
      for (const ranges of [
        ['0.0.0.0/0'],
        ['::/0'],
        ['10.0.0.0/8', '0.0.0.0/1', '128.0.0.0/1'],
        ['::ffff:0:0/96'],
        ['::/1', '8000::/1'],
      ]) {
        const issues = trust(ranges, { trustedUserHeader: 'x-user-id' })
        expect(issues).toHaveLength(1)
        expect(issues[0]).toMatch(
          /^auth\.trustProxy: .* holds every IPv[46] address: any client could send X-Forwarded-For and choose its own address .*with trustedUserHeader its own user id/,
        )
        expect(trust(ranges)).toHaveLength(1)
      }
    })

    it('accepts false, a hop count and the ranges of real proxies', () => {
      for (const ok of [
        false,
        1,
        2,
        ['10.0.0.0/8'],
        ['loopback', 'uniquelocal'],
        ['0.0.0.0/1'],
        ['2001:db8::/32'],
      ]) {
        expect(() => parseConfig({ auth: { trustProxy: ok } })).not.toThrow()
      }
      expect(trust(0)[0]).toMatch(/hop count from 1 to 100/)
      expect(trust('10.0.0.0/8')[0]).toMatch(/a list of your proxies/)
      expect(trust(['not-an-address'])[0]).toMatch(/not an IP address or CIDR/)
    })

    it('the library refuses them too', () => {
      expect(() => new IpResolver({ trustProxy: ['0.0.0.0/0'] })).toThrow(/holds every IPv4 address/)
      expect(() => new IpResolver({ trustProxy: ['::/0'] })).toThrow(/holds every IPv6 address/)
      expect(() => new IpResolver({ trustProxy: ['10.0.0.0/8'] })).not.toThrow()
    })
  })
})
