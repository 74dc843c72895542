import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { type CliIo, main } from '../../src/cli.js'
import { startGateway } from '../../src/gateway/index.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { sharedRedis, startTestGateway, stopRedis } from './helpers.js'

afterAll(stopRedis)

function capture(cwd: string, env: Record<string, string | undefined> = {}) {
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = { out: (t) => out.push(t), err: (t) => err.push(t), env, cwd }
  return { io, out: () => out.join('\n'), err: () => err.join('\n') }
}

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'sluice-cli-'))
}

const chatBody = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 5,
})

describe('sluice CLI', () => {
  it('check-config accepts a good file and names the bad path of a broken one', async () => {
    const d = dir()
    writeFileSync(
      join(d, 'sluice.yaml'),
      'port: 9000\ntiers:\n  free:\n    scope: key\n    limits:\n      daily: { kind: fixedWindow, limit: 100, window: 1d }\n',
    )
    const ok = capture(d)
    expect(await main(['check-config'], ok.io)).toBe(0)
    expect(ok.out()).toContain('config OK')
    expect(ok.out()).toContain('free (key: daily)')

    writeFileSync(
      join(d, 'bad.yaml'),
      'tiers:\n  free:\n    scope: key\n    limits:\n      daily: { kind: fixedWindow, limit: -1, window: 1d }\n',
    )
    const bad = capture(d)
    expect(await main(['check-config', '--config', 'bad.yaml'], bad.io)).toBe(1)
    expect(bad.err()).toContain('tiers.free.limits.daily.limit')

    const env = capture(d, { SLUICE_PORT: 'not-a-port' })
    expect(await main(['check-config'], env.io)).toBe(1)
    expect(env.err()).toContain('port (from SLUICE_PORT)')
  })

  it('keys create prints the key once and a config line that makes it work', async () => {
    const d = dir()
    const made = capture(d)
    expect(await main(['keys', 'create', '--tier', 'premium', '--name', 'CI Bot'], made.io)).toBe(0)
    const key = /sk-sluice-[A-Za-z0-9_-]{43}/.exec(made.out())?.[0]
    expect(key).toBeDefined()
    const line = made
      .out()
      .split('\n')
      .find((l) => l.trim().startsWith('- {'))!
    expect(line).toContain('tier: premium')
    expect(line).toContain('id: ci-bot')
    expect(line).not.toContain(key!)

    writeFileSync(
      join(d, 'sluice.yaml'),
      `port: 0\nledger: { path: ${JSON.stringify(join(d, 'usage.jsonl'))} }\nauth:\n  keys:\n${line}\n`,
    )
    const checked = capture(d)
    expect(await main(['check-config'], checked.io)).toBe(0)
    const { loadConfig } = await import('../../src/gateway/config/load.js')
    const gw = await startGateway(loadConfig({ cwd: d, env: {} }).config, { logger: false, env: {} })
    try {
      const res = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: chatBody,
      })
      await res.body.text()
      expect(res.statusCode).toBe(200)
      expect(res.headers['x-ratelimit-limit-requests']).toBe('2000')
      expect(gw.demoKey).toBeUndefined()
    } finally {
      await gw.close()
    }

    const unknownTier = capture(d)
    expect(await main(['keys', 'create', '--tier', 'gold', '--name', 'x'], unknownTier.io)).toBe(2)
    expect(unknownTier.err()).toContain('no tier named "gold"')
  })

  it('usage summarises the ledger per subject, model or outcome, and agrees with it', async () => {
    const gw = await startTestGateway('memory')
    try {
      for (const key of [gw.demoKey!, undefined, undefined]) {
        const res = await request(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: key ? { authorization: `Bearer ${key}` } : {},
          body: chatBody,
        })
        await res.body.text()
      }
      await gw.settled()
      const records = await gw.ledgerRecords()
      const total = records.reduce((s, r) => s + r.tokens, 0)
      const text = capture(dir())
      expect(await main(['usage', '--since', '1h', '--ledger', gw.ledgerPath], text.io)).toBe(0)
      expect(text.out()).toMatch(/key:demo\s+1\s/)
      expect(text.out()).toMatch(/ip:127\.0\.0\.1\s+2\s/)
      expect(text.out()).toMatch(new RegExp(`total\\s+3\\s+.*\\s${total}\\s`))

      const json = capture(dir())
      expect(await main(['usage', '--ledger', gw.ledgerPath, '--by', 'model', '--json'], json.io)).toBe(0)
      const parsed = JSON.parse(json.out()) as {
        rows: Array<{ group: string; requests: number; tokens: number }>
      }
      expect(parsed.rows).toEqual([
        expect.objectContaining({ group: 'gpt-4o-mini', requests: 3, tokens: total }),
      ])

      const bad = capture(dir())
      expect(await main(['usage', '--ledger', gw.ledgerPath, '--since', 'yesterday'], bad.io)).toBe(2)
      expect(bad.err()).toContain('--since')
    } finally {
      await gw.close()
    }
  })

  it('inspect and unblock work on the Redis state that gateways share', async () => {
    const redis = await sharedRedis()
    const d = dir()
    const prefix = `cli${process.pid}:`
    writeFileSync(
      join(d, 'sluice.yaml'),
      [
        `prefix: "${prefix}"`,
        `store: { type: redis, url: "${redis.url}" }`,
        'ledger: { path: false }',
        'tiers:',
        '  anonymous:',
        '    limits:',
        '      burst: { kind: tokenBucket, capacity: 2, per: 1h }',
        '    block: { after: 2, within: 1m, durations: [1h] }',
      ].join('\n'),
    )
    const { loadConfig } = await import('../../src/gateway/config/load.js')
    const config = loadConfig({ cwd: d, env: {} }).config
    config.port = 0
    const store = new RedisStore({ url: redis.url })
    const gw = await startGateway(config, { logger: false, env: {}, store })
    const call = async () => {
      const res = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: chatBody })
      await res.body.text()
      return res.statusCode
    }
    try {
      const statuses = [await call(), await call(), await call(), await call(), await call()]
      expect(statuses.slice(0, 2)).toEqual([200, 200])
      expect(statuses.slice(2)).toEqual([429, 429, 429])

      const inspected = capture(d)
      expect(await main(['inspect', 'ip:127.0.0.1'], inspected.io)).toBe(0)
      expect(inspected.out()).toMatch(/anonymous\s+burst\s+requests\s+tokenBucket\s+2\s+0\s/)
      expect(inspected.out()).toContain('(blocked)')

      const json = capture(d)
      expect(await main(['inspect', 'ip:127.0.0.1', '--json'], json.io)).toBe(0)
      expect(JSON.parse(json.out()).anonymous.blocked).toBe(true)

      const unblocked = capture(d)
      expect(await main(['unblock', 'ip:127.0.0.1'], unblocked.io)).toBe(0)
      const after = capture(d)
      expect(await main(['inspect', 'ip:127.0.0.1', '--json'], after.io)).toBe(0)
      expect(JSON.parse(after.out()).anonymous.blocked).toBe(false)

      const badSubject = capture(d)
      expect(await main(['inspect', 'someone'], badSubject.io)).toBe(2)
      expect(badSubject.err()).toContain('key:<id>')
    } finally {
      await gw.close()
      await store.close()
    }
  })

  it('explains that inspect needs a shared store when the config uses memory', async () => {
    const c = capture(dir())
    expect(await main(['inspect', 'key:demo'], c.io)).toBe(2)
    expect(c.err()).toContain('in-memory store')
  })

  it('rejects unknown commands and options', async () => {
    const c = capture(dir())
    expect(await main(['frobnicate'], c.io)).toBe(2)
    expect(c.err()).toContain('unknown command')
    const o = capture(dir())
    expect(await main(['usage', '--nope'], o.io)).toBe(2)
    const v = capture(dir())
    expect(await main(['--version'], v.io)).toBe(0)
    expect(v.out()).toMatch(/^\d+\.\d+\.\d+/)
  })
})
