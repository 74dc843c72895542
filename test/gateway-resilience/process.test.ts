/**
 * `sluice serve` as a process among others: its output piped into something that goes away
 * (`| head -1`), a shutdown that something below it will not let finish, and what it prints at
 * start-up. Real child processes, real pipes, a real redis-server.
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readLedger } from '../../src/gateway/ledger.js'
import { generateApiKey } from '../../src/http/index.js'
import { freePort } from '../helpers/free-port.js'
import { type RedisServer, startRedis } from '../helpers/redis-server.js'
import { sleep } from '../helpers/sleep.js'
import { chat, spawnServe, startServe, tempDir } from './serve-process.js'

function collect(stream: NodeJS.ReadableStream | null): () => string {
  let text = ''
  stream?.setEncoding('utf8')
  stream?.on('data', (d: string) => {
    text += d
  })
  return () => text
}

async function waitUntilServing(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sluice serve exited with ${child.exitCode}`)
    try {
      if ((await fetch(`${url}/healthz`)).ok) return
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error('sluice serve did not start')
    await sleep(50)
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return once(child, 'exit').then(([code]) => code as number | null)
}

async function chatCall(url: string): Promise<number> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: chat('hello') })
  await res.text()
  return res.status
}

describe('sluice serve whose output goes nowhere', () => {
  it('stdout closed by its reader (| head -1): keeps serving, and SIGTERM stops it cleanly', async () => {
    const port = await freePort()
    const child = spawnServe({ port, ledger: { path: false } })
    // The reader leaves before the banner is written, as `head -1` does after one line.
    child.stdout!.destroy()
    const stderr = collect(child.stderr)
    const url = `http://127.0.0.1:${port}`
    await waitUntilServing(url, child)
    await sleep(200)
    expect(child.exitCode).toBe(null)
    expect(await chatCall(url)).toBe(200)
    expect(stderr()).toMatch(/sluice: stdout is closed \(EPIPE\)/)
    child.kill('SIGTERM')
    expect(await exitOf(child)).toBe(0)
    expect(stderr()).toContain('stopped: every call settled, ledger flushed')
  })

  it('stderr closed by its reader: keeps serving, and its log lines go to stdout', async () => {
    const port = await freePort()
    const child = spawnServe({ port, ledger: { path: false } })
    child.stderr!.destroy()
    const stdout = collect(child.stdout)
    const url = `http://127.0.0.1:${port}`
    await waitUntilServing(url, child)
    expect(await chatCall(url)).toBe(200)
    child.kill('SIGTERM')
    expect(await exitOf(child)).toBe(0)
    // The shutdown's log lines and messages, which go to stderr, reached stdout instead.
    expect(stdout()).toMatch(/"msg":"stopped"|stopped: every call settled/)
  })
})

describe('sluice serve shutting down', () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it.skipIf(process.env.REDIS_URL !== undefined)(
    'exits even when Redis hangs (SIGSTOP): every step of the shutdown has a deadline',
    async () => {
      const serve = await startServe({
        store: { type: 'redis', url: redis.url, blockedCache: false },
        ledger: { path: false },
        shutdown: { deadline: '1s', hardDeadline: '20s' },
      })
      expect(await chatCall(serve.url)).toBe(200)
      const redisPid = await redisProcessId(redis.url)
      process.kill(redisPid, 'SIGSTOP')
      try {
        // Closing the Redis connection never gets its answer: that step is given up after its deadline.
        expect(await serve.stop('SIGTERM')).toBe(0)
        expect(serve.stderr()).toContain(
          'shutdown: closing the store did not finish within 5000ms; going on without it',
        )
        expect(serve.stderr()).toContain('stopped: every call settled, ledger flushed')
      } finally {
        process.kill(redisPid, 'SIGCONT')
      }
    },
  )

  it.skipIf(process.env.REDIS_URL !== undefined)(
    'shutdown.hardDeadline: the process exits by then, whatever is still stuck',
    async () => {
      const serve = await startServe({
        store: { type: 'redis', url: redis.url, blockedCache: false },
        ledger: { path: false },
        shutdown: { deadline: '1s', hardDeadline: '2s' },
      })
      expect(await chatCall(serve.url)).toBe(200)
      const redisPid = await redisProcessId(redis.url)
      process.kill(redisPid, 'SIGSTOP')
      try {
        // Closing the Redis connection waits for an answer that does not come; the deadline ends it.
        expect(await serve.stop('SIGTERM')).toBe(1)
        expect(serve.stderr()).toContain('shutdown did not finish within 2s: exiting without it')
      } finally {
        process.kill(redisPid, 'SIGCONT')
      }
    },
  )

  it('a second SIGTERM cuts the calls in flight at once; they are still settled and recorded', async () => {
    const dir = tempDir()
    const ledger = `${dir}/usage.jsonl`
    const serve = await startServe(
      {
        ledger: { path: ledger },
        shutdown: { deadline: '10m' },
        upstreams: { mock: { type: 'mock', tokensPerSecond: 10 } },
      },
      dir,
    )
    let firstChunk = false
    const stream = (async () => {
      const res = await fetch(`${serve.url}/v1/chat/completions`, {
        method: 'POST',
        body: chat('a long answer', { stream: true, max_tokens: 1000 }),
      })
      try {
        for await (const _ of res.body!) firstChunk = true
        return 'ended'
      } catch {
        return 'cut'
      }
    })()
    while (!firstChunk) await sleep(20)
    serve.child.kill('SIGTERM')
    await sleep(300)
    // Draining: the stream may take minutes (deadline 10m); the process waits for it…
    expect(serve.child.exitCode).toBe(null)
    // …until a second signal cuts it.
    serve.child.kill('SIGTERM')
    expect(await serve.exited).toBe(0)
    expect(await stream).toBe('cut')
    expect(serve.stderr()).toContain('SIGTERM again: cutting the calls in flight now')
    const records = []
    for await (const r of readLedger(ledger)) records.push(r)
    expect(records).toEqual([expect.objectContaining({ outcome: 'aborted', stream: true })])
    expect(records[0]!.completionTokens).toBeGreaterThan(0)
  })
})

describe('what sluice serve prints at start-up', () => {
  it('the banner comes first: no JSON "Server listening" line before it', async () => {
    const serve = await startServe({ ledger: { path: false } })
    try {
      expect(serve.stdout().startsWith('sluice gateway listening on http://127.0.0.1:')).toBe(true)
      expect(serve.stderr()).not.toContain('Server listening')
      expect(serve.stderr()).toBe('')
    } finally {
      await serve.stop()
    }
  })

  it('a SLUICE_DEMO_KEY is announced as lasting, and a weak one stops the start with a clear error', async () => {
    const key = generateApiKey()
    const serve = await startServe({ ledger: { path: false } }, undefined, { env: { SLUICE_DEMO_KEY: key } })
    try {
      // The banner may arrive in more than one chunk.
      await expect
        .poll(() => serve.stdout())
        .toContain(`demo key: ${key}  (service tier; from SLUICE_DEMO_KEY: valid until you change it`)
    } finally {
      await serve.stop()
    }
    const weak = spawnServe({ ledger: { path: false } }, undefined, {
      SLUICE_DEMO_KEY: 'sk-sluice-password123',
    })
    const stderr = collect(weak.stderr)
    expect(await exitOf(weak)).toBe(1)
    expect(stderr()).toContain('SLUICE_DEMO_KEY: expected a key as `sluice keys create` prints it')
    expect(stderr()).not.toContain('password123')
  })
})

async function redisProcessId(url: string): Promise<number> {
  const client = new Redis(url)
  try {
    return Number(/process_id:(\d+)/.exec(await client.info('server'))![1])
  } finally {
    client.disconnect()
  }
}
