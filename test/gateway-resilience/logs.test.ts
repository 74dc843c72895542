/**
 * Structured logs never carry an API key: key headers are redacted wherever a headers object is
 * logged, and anything shaped like a key is scrubbed from every line — checked on the logger
 * itself and on the whole output of a `sluice serve` process serving keyed calls of every kind.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/gateway/config/load.js'
import { createGatewayLogger } from '../../src/gateway/logger.js'
import { generateApiKey, hashApiKey } from '../../src/http/index.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { chat, startServe, tempDir } from './serve-process.js'

describe('API keys never reach the logs', () => {
  let redis: RedisServer

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis.stop()
  })

  it('the gateway logger redacts key headers and scrubs key-shaped strings from every line', () => {
    const lines: string[] = []
    const config = parseConfig({
      log: { level: 'trace' },
      auth: { apiKeyHeaders: ['x-team-token', 'authorization'] },
    })
    const logger = createGatewayLogger(config, {
      destination: { write: (line: string) => void lines.push(line) },
      secrets: ['demo-secret-not-shaped-like-a-key'],
    })
    const key = generateApiKey()
    const openaiStyle = `sk-proj-${'x'.repeat(40)}`
    logger.info(
      {
        req: {
          headers: { authorization: `Bearer ${key}`, 'x-api-key': key, 'content-type': 'application/json' },
        },
        upstream: { headers: { 'x-team-token': 'team-token-value-123' } },
      },
      'a request',
    )
    logger
      .child({ component: 'proxy' })
      .warn({ err: new Error(`upstream refused ${openaiStyle}`) }, 'upstream error')
    logger.error(`client sent Authorization: Bearer ${key} to the wrong route`)
    logger.info({ apiKey: key, note: 'demo-secret-not-shaped-like-a-key' }, 'configured')
    const out = lines.join('')
    for (const secret of [key, openaiStyle, 'team-token-value-123', 'demo-secret-not-shaped-like-a-key']) {
      expect(out).not.toContain(secret)
    }
    // Everything else is still there.
    expect(out).toContain('application/json')
    expect(out).toContain('upstream refused')
    expect(out).toContain('to the wrong route')
    expect(out.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(7)
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
  })

  it('a sluice serve process logging at debug level writes no key, valid or not, anywhere', async () => {
    const dir = tempDir()
    const key = generateApiKey()
    const wrongKey = generateApiKey()
    const gateway = await startServe(
      {
        store: { type: 'redis', url: redis.url, failMode: 'open' },
        prefix: `logs-${process.pid}:`,
        auth: { keys: [{ id: 'logtest', tier: 'service', hash: hashApiKey(key) }] },
        ledger: { path: join(dir, 'usage.jsonl') },
        log: { level: 'trace' },
      },
      dir,
    )
    const send = (path: string, headers: Record<string, string>, body?: string) =>
      fetch(`${gateway.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        ...(body !== undefined && { body }),
      }).then(async (r) => {
        await r.arrayBuffer()
        return r.status
      })
    const statuses = [
      await send('/v1/chat/completions', { authorization: `Bearer ${key}` }, chat('bearer')),
      await send('/v1/chat/completions', { 'x-api-key': key }, chat('header')),
      await send('/v1/chat/completions', { 'x-api-key': key }, chat('stream', { stream: true })),
      await send(
        '/v1/chat/completions',
        { authorization: `Bearer ${key}`, 'x-mock-fail': '500' },
        chat('fail'),
      ),
      await send('/v1/chat/completions', { authorization: `Bearer ${key}` }, '{"model": '),
      await send('/v1/chat/completions', { authorization: `Bearer ${wrongKey}` }, chat('wrong')),
      await send(`/v1/nowhere?api_key=${key}`, { authorization: `Bearer ${key}` }),
      await send('/v1/models', { authorization: `Bearer ${key}` }),
    ]
    expect(statuses).toEqual([200, 200, 200, 500, 400, 401, 404, 200])
    expect(await gateway.stop('SIGTERM')).toBe(0)

    const output = gateway.stdout() + gateway.stderr()
    expect(output).not.toContain(key)
    expect(output).not.toContain(wrongKey)
    expect(output).not.toContain(key.slice('sk-sluice-'.length))
    // The calls were logged (structured, with the subject), so the check above looked at real lines.
    const settled = gateway
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; subject?: string })
      .filter((l) => l.msg === 'call settled')
    expect(settled.length).toBeGreaterThanOrEqual(5)
    expect(settled.every((l) => l.subject === 'key:logtest')).toBe(true)
  })
})
