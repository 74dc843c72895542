/**
 * A JSON answer reaches the client byte for byte as the upstream sent it, with the upstream's
 * header values as it sent them: answers that are not valid UTF-8 or that hold U+FFFD, and header
 * values outside ASCII (Node writes header text as latin1), whatever way the gateway writes them.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGatewayInFrontOf, type TestGateway } from './helpers.js'

const USAGE = '"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}'
/** Answers by the call's prompt: the body's bytes, and extra headers. */
const ANSWERS: Record<string, { body: Buffer; headers?: Record<string, string> }> = {
  // A lone continuation byte and a cut three-byte sequence inside the content string.
  'not-utf8': {
    body: Buffer.concat([
      Buffer.from(
        '{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"a',
      ),
      Buffer.from([0x80, 0x41, 0xf0, 0x9f, 0x98]),
      Buffer.from(`"},"finish_reason":"stop"}],${USAGE}}`),
    ]),
  },
  'replacement-character': {
    body: Buffer.from(
      `{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"\uFFFD é 😀"},"finish_reason":"stop"}],${USAGE}}`,
    ),
  },
  'latin1-header': {
    body: Buffer.from(
      `{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"é 😀"},"finish_reason":"stop"}],${USAGE}}`,
    ),
    headers: { 'x-request-id': 'req_caf\u00e9' },
  },
}

/** The raw response to one call: its head as latin1 text and its body's bytes. */
async function rawCall(url: string, key: string, answer: string): Promise<{ head: string; body: Buffer }> {
  const { hostname, port } = new URL(url)
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: answer }] })
  const socket = connect(Number(port), hostname)
  socket.write(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n` +
      `authorization: Bearer ${key}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await once(socket, 'end')
  const all = Buffer.concat(chunks)
  const end = all.indexOf('\r\n\r\n')
  return { head: all.subarray(0, end).toString('latin1'), body: all.subarray(end + 4) }
}

describe('a JSON answer through the gateway', () => {
  let upstream: Server
  let gw: TestGateway
  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let text = ''
      req.on('data', (c) => {
        text += c
      })
      req.on('end', () => {
        const prompt = (JSON.parse(text) as { messages: { content: string }[] }).messages[0]!.content
        const answer = ANSWERS[prompt]!
        res.writeHead(200, { 'content-type': 'application/json', ...answer.headers })
        res.end(answer.body)
      })
    })
    gw = await startGatewayInFrontOf(upstream)
  })
  afterAll(async () => {
    await gw?.close()
    upstream?.close()
  })

  it.each(Object.keys(ANSWERS))('is the bytes the upstream sent (%s)', async (name) => {
    const { head, body } = await rawCall(gw.url, gw.demoKey!, name)
    const sent = ANSWERS[name]!
    expect(head).toMatch(/^HTTP\/1\.1 200 /)
    expect(body.equals(sent.body), body.toString('latin1')).toBe(true)
    expect(head).toContain(`\r\ncontent-length: ${sent.body.length}\r\n`)
    for (const [header, value] of Object.entries(sent.headers ?? {})) {
      expect(head).toContain(`\r\n${header}: ${value}\r\n`)
    }
    expect(head).toMatch(/\r\nx-ratelimit-remaining-requests: \d+(\r\n|$)/)
  })
})
