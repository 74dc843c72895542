/**
 * A body nested thousands of levels deep parsed, then broke JSON.stringify while the upstream call
 * was built: a 500, after one request and the prompt had been charged. Its depth is bounded.
 */
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../../src/gateway/json-body.js'
import { STORE_KINDS, startTestGateway, stopRedis, type TestGateway } from './helpers.js'

afterAll(stopRedis)

/** A chat request whose tool schema nests `levels` objects inside one another. */
function nestedTools(levels: number): string {
  const schema = `${'{"type":"object","properties":{"x":'.repeat(levels)}{"type":"string"}${'}}'.repeat(levels)}`
  return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${schema}}}]}`
}

describe('JSON depth', () => {
  it('measures nesting outside strings only, escapes included', () => {
    expect(nestedDeeperThan('[[[]]]', 3)).toBe(false)
    expect(nestedDeeperThan('[[[[]]]]', 3)).toBe(true)
    expect(nestedDeeperThan(`{"a":"${'['.repeat(500)}"}`, 3)).toBe(false)
    expect(nestedDeeperThan(`{"a":"\\"[[[[\\\\"}`, 1)).toBe(false)
    expect(nestedDeeperThan(`{"a":"\\\\"}`.replace('}', ',"b":[[[]]]}'), 3)).toBe(true)
    expect(nestedDeeperThan('{"unterminated', 1)).toBe(false)
  })
})

describe.each(STORE_KINDS)('a deeply nested body (%s store)', (kind) => {
  let gw: TestGateway
  beforeAll(async () => {
    gw = await startTestGateway(kind)
  })
  afterAll(() => gw?.close())

  async function post(body: string) {
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gw.demoKey}` },
      body,
    })
    return { status: res.statusCode, json: (await res.body.json()) as { error?: Record<string, unknown> } }
  }

  it('is a 400 naming the limit, before anything is charged', async () => {
    for (const body of [
      nestedTools(5_000),
      `{"model":"gpt-4o-mini","messages":[{"role":"user","content":${'['.repeat(5_000)}${']'.repeat(5_000)}}]}`,
      `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`,
    ]) {
      const res = await post(body)
      expect(res.status).toBe(400)
      expect(res.json.error).toMatchObject({
        type: 'invalid_request_error',
        code: 'json_too_deep',
        param: null,
      })
      expect(res.json.error!.message).toContain(String(MAX_JSON_DEPTH))
    }
    await gw.settled()
    expect(await gw.ledgerRecords()).toHaveLength(0)
    expect(await gw.used('service', 'key:demo', 'hourly')).toBe(0)
    expect(await gw.used('service', 'key:demo', 'tokens')).toBe(0)
    expect(gw.mock!.records).toHaveLength(0)
  })

  it('passes a tool schema nested as deep as real ones go', async () => {
    const res = await post(nestedTools(40))
    expect(res.status).toBe(200)
  })
})
