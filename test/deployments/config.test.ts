import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { ConfigError, parseConfig } from '../../src/gateway/config/load.js'

function issuesOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (error) {
    if (error instanceof ConfigError) return error.issues
    throw error
  }
  throw new Error('expected a ConfigError')
}

describe('deployments config', () => {
  it('fills in weight, window and the provider model; fallbacks by model', () => {
    const config = parseConfig({
      upstreams: { a: { type: 'mock' }, b: { type: 'mock' } },
      deployments: {
        'gpt-4o': [
          { upstream: 'a', limits: { requests: 60, tokens: 1000, usdPerDay: 5 } },
          { name: 'east', upstream: 'b', model: 'gpt4o-east', weight: 2 },
        ],
      },
      fallbacks: { 'gpt-4o': 'gpt-4o-mini' },
    })
    expect(config.deployments['gpt-4o']).toEqual([
      { upstream: 'a', weight: 1, limits: { requests: 60, tokens: 1000, usdPerDay: 5, window: 60_000 } },
      { name: 'east', upstream: 'b', model: 'gpt4o-east', weight: 2, limits: { window: 60_000 } },
    ])
    expect(config.fallbacks).toEqual({ 'gpt-4o': 'gpt-4o-mini' })
  })

  it('names each bad field', () => {
    const issues = issuesOf(() =>
      parseConfig({
        deployments: {
          m: [{ upstream: 'mock', weight: 0, limits: { requests: 1.5, rpm: 3 } }],
          n: [],
        },
      }),
    )
    expect(issues.join('\n')).toMatch(/deployments\.m\.0\.weight/)
    expect(issues.join('\n')).toMatch(/deployments\.m\.0\.limits\.requests/)
    expect(issues.join('\n')).toMatch(/deployments\.m\.0\.limits.*rpm/)
    expect(issues.join('\n')).toMatch(/deployments\.n: a model needs at least one deployment/)
  })

  it('refuses unknown upstreams, repeated names and fallbacks that lead nowhere', () => {
    const issues = issuesOf(() =>
      parseConfig({
        deployments: {
          m: [{ upstream: 'nope' }, { upstream: 'mock' }, { upstream: 'mock' }],
        },
        fallbacks: { m: 'm', other: 'm' },
      }),
    )
    expect(issues).toContain(
      'deployments.m.0.upstream: no upstream named "nope" (have: mock, openai, anthropic)',
    )
    expect(
      issues.some((i) => i.startsWith('deployments.m.2.name: "mock/m" already names deployments.m.1')),
    ).toBe(true)
    expect(issues).toContain('fallbacks.m: a model cannot fall back to itself')
    expect(issues.some((i) => i.startsWith('fallbacks.other: "other" has no deployments'))).toBe(true)
  })

  it('refuses deployments on a Redis Cluster (one atomic step needs one slot)', () => {
    const issues = issuesOf(() =>
      parseConfig({
        store: { type: 'redis', nodes: ['redis://127.0.0.1:7000'] },
        deployments: { m: [{ upstream: 'mock' }] },
      }),
    )
    expect(issues.some((i) => i.startsWith('deployments: need one Redis'))).toBe(true)
  })

  it('the commented example in sluice.example.yaml is a valid config once uncommented', () => {
    const text = readFileSync('sluice.example.yaml', 'utf8')
    const block = text
      .split('\n')
      .filter((l) => /^# (deployments:| {2}gpt-4o:| {4}- \{|fallbacks:)/.test(l))
      .map((l) => l.slice(2))
      .join('\n')
    const raw = parse(block) as Record<string, unknown>
    const config = parseConfig({
      ...raw,
      upstreams: { 'azure-east': { type: 'openai', baseUrl: 'https://example.com/v1' } },
    })
    expect(config.deployments['gpt-4o']?.map((d) => d.name)).toEqual(['openai-main', 'azure-east'])
  })
})
