/**
 * What `sluice serve` prints at start-up tells the truth: which upstream each model pattern really
 * reaches, how long the demo key lives; and the example config works as shipped, with no network.
 */
import { copyFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bannerLines } from '../../src/gateway/banner.js'
import { loadConfig } from '../../src/gateway/config/load.js'
import { startGateway } from '../../src/gateway/index.js'
import { generateApiKey } from '../../src/http/index.js'

const ROOT = join(import.meta.dirname, '../..')

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'sluice-banner-'))
}

describe('the start-up banner', () => {
  it('names the upstream of each model pattern, and whether it has its key', async () => {
    const gw = await startGateway(
      {
        port: 0,
        ledger: { path: false },
        upstreams: { ollama: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'OLLAMA_KEY' } },
        models: {
          'gpt-*': { upstream: 'openai' },
          'llama*': { upstream: 'ollama' },
          'mock-*': { upstream: 'mock' },
          'Qwen/*': { encoding: 'cl100k_base' },
        },
      },
      { logger: false, env: { OLLAMA_KEY: 'local-secret-not-printed' } },
    )
    try {
      const lines = bannerLines(gw, { configPath: undefined, store: 'in memory' })
      const text = lines.join('\n')
      expect(lines).toContain(
        '  upstreams: gpt-* → openai (https://api.openai.com/v1, no key: $OPENAI_API_KEY is not set)',
      )
      expect(lines).toContain('             llama* → ollama (http://127.0.0.1:9/v1, key from $OLLAMA_KEY)')
      expect(lines).toContain(
        `             mock-* and every other model → mock (built-in mock at ${gw.mock!.url})`,
      )
      expect(text).not.toContain('local-secret-not-printed')
      expect(text).toContain(
        'warning:  upstreams.openai: $OPENAI_API_KEY is not set, so calls routed to "openai" (gpt-*) are sent without an API key',
      )
      expect(text).toMatch(/demo key: sk-sluice-\S+ {2}\(service tier; valid while this process runs\)/)
    } finally {
      await gw.close()
    }
  })

  it('says that a SLUICE_DEMO_KEY outlives the process', async () => {
    const key = generateApiKey()
    const gw = await startGateway(
      { port: 0, ledger: { path: false } },
      { logger: false, env: { SLUICE_DEMO_KEY: key } },
    )
    try {
      expect(gw.demoKey).toBe(key)
      const lines = bannerLines(gw, { configPath: undefined, store: 'in memory' })
      expect(lines).toContain(`  upstream: mock (built-in mock at ${gw.mock!.url})`)
      expect(lines).toContain(
        `  demo key: ${key}  (service tier; from SLUICE_DEMO_KEY: valid until you change it — keep it secret)`,
      )
    } finally {
      await gw.close()
    }
  })

  it('refuses a SLUICE_DEMO_KEY that is not a key as `sluice keys create` makes it, without printing it', async () => {
    for (const weak of ['letmein', `sk-sluice-${'ab'.repeat(21)}a`, `${generateApiKey()}x`]) {
      const start = startGateway(
        { port: 0, ledger: { path: false } },
        { logger: false, env: { SLUICE_DEMO_KEY: weak } },
      )
      await expect(start).rejects.toThrow(/SLUICE_DEMO_KEY: /)
      await expect(start).rejects.not.toThrow(weak)
    }
  })
})

describe('sluice.example.yaml', () => {
  it('copied to sluice.yaml, serves the quick start curl with no network, and the banner says mock', async () => {
    const d = dir()
    copyFileSync(join(ROOT, 'sluice.example.yaml'), join(d, 'sluice.yaml'))
    const { config, path } = loadConfig({
      cwd: d,
      env: { SLUICE_PORT: '0', SLUICE_LEDGER: join(d, 'usage.jsonl') },
    })
    const gw = await startGateway(config, { logger: false, env: {} })
    try {
      // The README's curl: no key, so the anonymous tier.
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] }),
      })
      expect(res.status).toBe(200)
      const body = (await res.json()) as { choices: Array<{ message: { content: string } }> }
      expect(body.choices[0]!.message.content.length).toBeGreaterThan(0)
      const lines = bannerLines(gw, { configPath: path, store: 'in memory' })
      expect(lines.filter((l) => /upstream/.test(l))).toEqual([
        `  upstream: mock (built-in mock at ${gw.mock!.url})`,
      ])
      expect(gw.warnings).toEqual([])
    } finally {
      await gw.close()
    }
  })
})
