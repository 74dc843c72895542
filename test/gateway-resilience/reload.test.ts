/**
 * SIGHUP reloads sluice.yaml in a running `sluice serve`: new tiers and prices apply to new calls,
 * a call in flight finishes, and a broken config is not applied (the old one keeps serving, one
 * line says why, a metric counts it). A real process, a real signal.
 */
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import type { GatewayConfigInput } from '../../src/gateway/config/schema.js'
import { generateApiKey, hashApiKey } from '../../src/http/index.js'
import { sleep } from '../helpers/sleep.js'
import { startServe, tempDir } from './serve-process.js'

const key = generateApiKey()

function config(requests: number): GatewayConfigInput {
  return {
    port: 0,
    ledger: { path: false },
    upstreams: { mock: { type: 'mock', tokensPerSecond: 40 } },
    tiers: {
      team: { scope: 'key', limits: { hourly: { kind: 'slidingWindow', limit: requests, window: '1h' } } },
    },
    auth: { keys: [{ id: 'reloaded', tier: 'team', hash: hashApiKey(key) }] },
  }
}

describe('SIGHUP', () => {
  it('applies a new sluice.yaml to new calls without dropping the one in flight, and keeps the old one when the new one is bad', async () => {
    const dir = tempDir()
    const gw = await startServe(config(100), dir)
    const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.yaml'))!)
    try {
      const client = new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 })
      const limitNow = async () =>
        (await client.models.list().withResponse()).response.headers.get('x-ratelimit-limit-requests')
      expect(await limitNow()).toBe('100')

      // A streamed answer of 80 tokens at 40 a second: in flight for about two seconds.
      const stream = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Tell me a long story.' }],
        max_tokens: 80,
        stream: true,
      })
      const streamed = (async () => {
        let text = ''
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
        return text
      })()

      writeFileSync(file, JSON.stringify(config(7)))
      gw.child.kill('SIGHUP')
      await expect.poll(() => gw.stderr(), { timeout: 10_000 }).toContain('SIGHUP: config reloaded')
      expect(await limitNow()).toBe('7')
      expect((await streamed).length).toBeGreaterThan(0)

      writeFileSync(
        file,
        'tiers: { team: { scope: key, limits: { hourly: { kind: fixedWindow, limit: -1 } } } }\n',
      )
      gw.child.kill('SIGHUP')
      await expect.poll(() => gw.stderr(), { timeout: 10_000 }).toContain('SIGHUP: config not reloaded')
      const line = gw
        .stderr()
        .split('\n')
        .find((l) => l.includes('config not reloaded'))!
      expect(line).toContain('tiers.team.limits.hourly')
      expect(await limitNow()).toBe('7')
      const metrics = await (await fetch(`${gw.url}/metrics`)).text()
      expect(metrics).toContain('sluice_config_reloads_total{result="applied"} 1')
      expect(metrics).toContain('sluice_config_reloads_total{result="failed"} 1')
      await sleep(50)
      expect(gw.child.exitCode).toBe(null)
    } finally {
      expect(await gw.stop('SIGTERM')).toBe(0)
    }
  }, 60_000)
})
