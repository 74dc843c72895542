import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { type CliIo, main } from '../../src/cli.js'
import { startGateway } from '../../src/gateway/index.js'
import { generateApiKey } from '../../src/http/index.js'
import { RedisStore } from '../../src/store/redis/store.js'
import { newKey, sharedRedis, startTestGateway, stopRedis } from './helpers.js'

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
    expect(await main(['keys', 'create', '--yaml', '--tier', 'premium', '--name', 'CI Bot'], made.io)).toBe(0)
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
    expect(await main(['keys', 'create', '--yaml', '--tier', 'gold', '--name', 'x'], unknownTier.io)).toBe(2)
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

  it('inspect and unblock resolve a subject as the gateway counts it: an address by its /64, a key by its tier and user', async () => {
    const redis = await sharedRedis()
    const d = dir()
    const prefix = `cli6-${process.pid}:`
    const alice = newKey('premium', 'alice-laptop')
    const bot = newKey('service', 'ci-bot')
    writeFileSync(
      join(d, 'sluice.yaml'),
      [
        `prefix: "${prefix}"`,
        `store: { type: redis, url: "${redis.url}" }`,
        'ledger: { path: false }',
        'auth:',
        '  trustProxy: [loopback]',
        '  keys:',
        `    - { id: alice-laptop, tier: premium, user: alice, hash: ${alice.entry.hash} }`,
        `    - { id: ci-bot, tier: service, hash: ${bot.entry.hash} }`,
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
    const call = async (headers: Record<string, string>) => {
      const res = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers, body: chatBody })
      await res.body.text()
      return res.statusCode
    }
    const bucket = 'ip:2001:db8:1:2::/64'
    const run = async (...args: string[]) => {
      const c = capture(d)
      const code = await main(args, c.io)
      return { code, out: c.out(), err: c.err() }
    }
    try {
      const statuses: number[] = []
      for (let i = 0; i < 5; i++) statuses.push(await call({ 'x-forwarded-for': '2001:db8:1:2::5' }))
      expect(statuses).toEqual([200, 200, 429, 429, 429])
      const anonymous = gw.sluice.tierLimiter('anonymous')
      expect((await anonymous.peek(bucket, { requests: 0, concurrent: 0 })).blocked).toBe(true)

      // Another address of the same /64 is the same bucket: spent and blocked.
      const seen = await run('inspect', 'ip:2001:db8:1:2::99')
      expect(seen.code).toBe(0)
      expect(seen.out).toContain(`2001:db8:1:2::99 counts in ${bucket}`)
      expect(seen.out).toMatch(/anonymous\s+burst\s+requests\s+tokenBucket\s+2\s+0\s/)
      expect(seen.out).toContain('(blocked)')
      const wrongSize = await run('inspect', 'ip:2001:db8:1::/48')
      expect(wrongSize.code).toBe(1)
      expect(wrongSize.err).toContain('groups of /64')

      // unblock of the address lifts the block of its /64, which is what the gateway checks.
      const unblocked = await run('unblock', 'ip:2001:db8:1:2::5')
      expect(unblocked.code).toBe(0)
      expect(unblocked.out).toContain(`unblocked ${bucket} in tier anonymous`)
      expect((await anonymous.peek(bucket, { requests: 0, concurrent: 0 })).blocked).toBe(false)

      // Not blocked any more, but the burst is spent: the next call would not pass, and --json says so.
      const json = await run('inspect', `ip:2001:db8:1:2::5`, '--json')
      const state = JSON.parse(json.out) as Record<
        string,
        { subject: string; allowed: boolean; deniedBy: string; blocked: boolean }
      >
      expect(state.anonymous).toMatchObject({
        subject: bucket,
        allowed: false,
        deniedBy: 'burst',
        blocked: false,
      })
      expect(await call({ 'x-forwarded-for': '2001:db8:1:2::5' })).toBe(429)

      // A key in a per-user tier counts as its user, in its own tier.
      for (let i = 0; i < 3; i++) expect(await call({ authorization: `Bearer ${alice.key}` })).toBe(200)
      const keyJson = JSON.parse((await run('inspect', 'key:alice-laptop', '--json')).out) as Record<
        string,
        { subject: string; allowed: boolean; limits: Array<{ name: string; remaining: number }> }
      >
      expect(Object.keys(keyJson)).toEqual(['premium'])
      expect(keyJson.premium!.subject).toBe('user:alice')
      expect(keyJson.premium!.allowed).toBe(true)
      expect(keyJson.premium!.limits.find((l) => l.name === 'hourly')!.remaining).toBe(1997)
      const keyText = await run('inspect', 'key:alice-laptop')
      expect(keyText.out).toContain('key alice-laptop counts as user:alice (tier premium counts per user)')
      expect(keyText.out).toMatch(/premium\s+hourly\s+requests\s+slidingWindow\s+2,000\s+1,997\s/)
      const user = JSON.parse((await run('inspect', 'user:alice', '--json')).out) as Record<string, unknown>
      expect(Object.keys(user)).toEqual(['premium'])

      // Subjects the gateway never counts are said to be so, with exit code 1.
      const unknown = await run('inspect', 'key:doesnotexist')
      expect(unknown.code).toBe(1)
      expect(unknown.err).toContain(
        'unknown key: no key with id "doesnotexist" (configured: alice-laptop, ci-bot)',
      )
      expect(unknown.out).toBe('')
      const unknownUnblock = await run('unblock', 'key:doesnotexist')
      expect(unknownUnblock.code).toBe(1)
      expect(unknownUnblock.err).toContain('unknown key')
      const nobody = await run('inspect', 'user:bob')
      expect(nobody.code).toBe(1)
      expect(nobody.err).toContain('no tier counts user:bob')
    } finally {
      await gw.close()
      await store.close()
    }
  })

  it('usage: a missing ledger is an error, and lines that hold no record are reported', async () => {
    const d = dir()
    const missing = capture(d)
    expect(await main(['usage', '--ledger', join(d, 'nope.jsonl')], missing.io)).toBe(1)
    expect(missing.err()).toContain(`no ledger at ${join(d, 'nope.jsonl')} (missing`)
    expect(missing.out()).toBe('')
    const aDirectory = capture(d)
    expect(await main(['usage', '--ledger', d], aDirectory.io)).toBe(1)
    expect(aDirectory.err()).toContain('a directory, not a ledger file')

    const path = join(d, 'usage.jsonl')
    const line = (model: string) =>
      JSON.stringify({
        time: new Date().toISOString(),
        subject: 'key:a',
        tier: 'service',
        model,
        route: 'chat',
        stream: false,
        status: 200,
        outcome: 'ok',
        limited: true,
        source: 'upstream',
        promptTokens: 1,
        completionTokens: 2,
        tokens: 3,
        usd: 0,
      })
    writeFileSync(path, `${line('m1')}\n{"time":"2026-01-0\n${line('m2')}\ngarbage\n`)
    const text = capture(d)
    expect(await main(['usage', '--ledger', path, '--since', 'all'], text.io)).toBe(0)
    expect(text.out()).toMatch(/key:a\s+2\s/)
    expect(text.err()).toContain(`skipped 2 lines that hold no whole record: ${path}:2 (`)
    expect(text.err()).toContain(`${path}:4 (not JSON)`)
    const json = capture(d)
    expect(await main(['usage', '--ledger', path, '--since', 'all', '--json'], json.io)).toBe(0)
    const parsed = JSON.parse(json.out()) as { skipped: Array<{ line: number }> }
    expect(parsed.skipped.map((s) => s.line)).toEqual([2, 4])
  })

  it('never prints control characters from the ledger or the command line raw: no colours, no forged rows', async () => {
    const d = dir()
    const path = join(d, 'usage.jsonl')
    const record = (model: string, subject: string) =>
      JSON.stringify({
        time: new Date().toISOString(),
        subject,
        tier: 'service',
        model,
        route: 'chat',
        stream: false,
        status: 200,
        outcome: 'ok',
        limited: true,
        source: 'upstream',
        promptTokens: 1,
        completionTokens: 2,
        tokens: 3,
        usd: 0.5,
      })
    const forged = 'gpt-4o\r\nkey:boss          1000  1  1  1  $0.0000\x1b[2K\x1b[1A'
    writeFileSync(path, `${record(forged, 'user:\x1b]0;pwned\x07')}\n${record('gpt-4o', 'key:a')}\n`)
    for (const by of ['model', 'subject']) {
      const c = capture(d)
      expect(await main(['usage', '--ledger', path, '--since', 'all', '--by', by], c.io)).toBe(0)
      const out = c.out()
      // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may be printed
      expect(out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/)
      // The header, the rule, two rows and the total: nothing forged in between.
      expect(out.split('\n')).toHaveLength(6)
    }
    const model = capture(d)
    await main(['usage', '--ledger', path, '--since', 'all', '--by', 'model'], model.io)
    expect(model.out()).toContain('gpt-4o\\r\\nkey:boss')
    expect(model.out()).toContain('\\x1b[2K')
    // Arguments echoed in messages are escaped too.
    const arg = capture(d)
    expect(await main(['usage', '--ledger', path, '--by', 'model\x1b[31m'], arg.io)).toBe(2)
    expect(arg.err()).toContain('model\\x1b[31m')
    expect(arg.err()).not.toContain('\x1b')
    const subject = capture(d)
    expect(await main(['inspect', 'user:\x1b[31mred'], subject.io)).toBe(2)
    expect(subject.err()).not.toContain('\x1b')
  })

  it('check-config warns when a routed upstream has no key, and fails on warnings under --strict', async () => {
    const d = dir()
    writeFileSync(join(d, 'sluice.yaml'), 'models:\n  "gpt-*": { upstream: openai }\n')
    const warned = capture(d)
    expect(await main(['check-config'], warned.io)).toBe(0)
    expect(warned.out()).toContain('config valid, with warnings')
    expect(warned.err()).toContain(
      'warning: upstreams.openai: $OPENAI_API_KEY is not set, so calls routed to "openai" (gpt-*) are sent without an API key',
    )
    const strict = capture(d)
    expect(await main(['check-config', '--strict'], strict.io)).toBe(1)
    expect(strict.err()).toContain('--strict: 1 warning count as errors')
    const keyed = capture(d, { OPENAI_API_KEY: 'sk-test-not-a-real-key-000000' })
    expect(await main(['check-config', '--strict'], keyed.io)).toBe(0)
    expect(keyed.out()).toContain('config OK')
    expect(keyed.err()).toBe('')
  })

  it('check-config refuses a ledger path that cannot be written, and a weak SLUICE_DEMO_KEY', async () => {
    const d = dir()
    writeFileSync(join(d, 'blocker'), '')
    writeFileSync(
      join(d, 'sluice.yaml'),
      `ledger: { path: ${JSON.stringify(join(d, 'blocker', 'u.jsonl'))} }\n`,
    )
    const path = capture(d)
    expect(await main(['check-config'], path.io)).toBe(1)
    expect(path.err()).toContain(
      `ledger.path: cannot create ${join(d, 'blocker', 'u.jsonl')}: ${join(d, 'blocker')} is a file`,
    )

    const e = dir()
    for (const weak of ['hunter2', `sk-sluice-${'a'.repeat(43)}`]) {
      const c = capture(e, { SLUICE_DEMO_KEY: weak })
      expect(await main(['check-config'], c.io)).toBe(1)
      expect(c.err()).toContain('SLUICE_DEMO_KEY:')
      expect(c.err()).not.toContain(weak)
    }
    const good = capture(e, { SLUICE_DEMO_KEY: generateApiKey() })
    expect(await main(['check-config'], good.io)).toBe(0)
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
