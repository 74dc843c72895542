/**
 * Each example app starts with its one command and does what its banner says: anonymous
 * requests are limited per IP (429 after 20), the demo key is a service-tier key, and the chat
 * route answers with usage and rate-limit headers.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort } from '../helpers/free-port.js'
import { call, callMany } from './client.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill()
})

async function startExample(name: string): Promise<{ url: string; key: string }> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${name}.ts`], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  child.stderr!.resume()
  let out = ''
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      out += chunk
      const key = /demo API key \(service tier\): (sk-sluice-\S+)/.exec(out)
      if (key !== null) resolve({ url: `http://127.0.0.1:${port}`, key: key[1]! })
    })
    child.once('exit', (code) => reject(new Error(`examples/${name}.ts exited with ${code}: ${out}`)))
  })
}

describe.each(['express', 'fastify', 'hono', 'node'])('examples/%s.ts', (name) => {
  it('runs with one command and limits as its banner says', async () => {
    const { url, key } = await startExample(name)
    const keyed = await call(`${url}/hello`, { 'x-api-key': key })
    expect(keyed.status).toBe(200)
    expect(keyed.body.you).toMatch(/^key:/)
    // The tightest request limit of the service tier is its burst of 1,000.
    expect(keyed.headers.get('x-ratelimit-limit-requests')).toBe('1000')

    const chat = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello there' }] }),
    })
    expect(chat.status).toBe(200)
    expect(((await chat.json()) as { usage: { total_tokens: number } }).usage.total_tokens).toBeGreaterThan(0)
    expect(chat.headers.get('x-ratelimit-limit-tokens')).toBe('5000000')

    const anonymous = await callMany(`${url}/hello`, 21, () => ({}), 1)
    expect(anonymous.slice(0, 20).every((r) => r.status === 200)).toBe(true)
    expect(anonymous[20]!.status).toBe(429)
    expect(anonymous[19]!.body.warning).toMatch(/^Only 0 of 20 requests left/)
  })
})
