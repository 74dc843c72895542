import { expect } from 'vitest'

export interface Reply {
  status: number
  headers: Headers
  // biome-ignore lint/suspicious/noExplicitAny: JSON of several shapes
  body: any
  text: string
}

export async function call(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Reply> {
  const res = await fetch(url, { method, headers })
  const text = await res.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  const reply = { status: res.status, headers: res.headers, body, text }
  // Every 429 a test sees is checked for Retry-After ≥ 1 and a well-formed body.
  if (res.status === 429) expectGood429(reply)
  return reply
}

/** Sends `count` requests, `parallel` at a time; `headersFor(i)` gives each one's headers. */
export async function callMany(
  url: string,
  count: number,
  headersFor: (i: number) => Record<string, string> = () => ({}),
  parallel = 25,
): Promise<Reply[]> {
  const out: Reply[] = new Array(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      out[i] = await call(url, headersFor(i))
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker))
  return out
}

/** Retry-After is whole seconds ≥ 1 and agrees with retry-after-ms; the body is OpenAI-shaped. */
export function expectGood429(reply: Reply): void {
  const after = reply.headers.get('retry-after')
  const afterMs = reply.headers.get('retry-after-ms')
  if (after !== null) {
    expect(after).toMatch(/^[1-9]\d*$/)
    expect(afterMs).toMatch(/^[1-9]\d*$/)
    expect(Number(after)).toBe(Math.max(1, Math.ceil(Number(afterMs) / 1000)))
  } else {
    // Only when waiting can never help, and then the client is told not to retry.
    expect(reply.headers.get('x-should-retry')).toBe('false')
  }
  expect(reply.body?.error).toMatchObject({ param: null })
  expect(typeof reply.body.error.message).toBe('string')
  expect(typeof reply.body.error.type).toBe('string')
  expect(reply.body.error.code).toMatch(/^(rate_limit_exceeded|insufficient_quota)$/)
}

export const statuses = (replies: Reply[]) => replies.map((r) => r.status)
export const count = (replies: Reply[], status: number) => replies.filter((r) => r.status === status).length
