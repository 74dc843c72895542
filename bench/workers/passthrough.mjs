// The bench's pass-through proxy: bare Fastify + undici, no limits, no accounting, in front of the
// mock upstream — the ceiling the gateway rows compare the gateway with. Plain JavaScript so that
// both the bench's tsx workers (gateway-server.ts) and the plain Node process counted under
// valgrind (gateway-plain.mjs) run the very same proxy.
import Fastify from 'fastify'
import { Pool } from 'undici'

/** Starts the proxy on 127.0.0.1 (a free port) in front of `upstreamUrl` (the mock's base, with /v1). */
export async function startPassThrough(upstreamUrl) {
  const upstream = new URL(upstreamUrl)
  const base = upstream.pathname.replace(/\/$/, '')
  // As many upstream connections as the gateway's default for an upstream (128).
  const pool = new Pool(upstream.origin, { connections: 128, keepAliveTimeout: 30_000 })
  const app = Fastify({ logger: false })
  app.post('/v1/chat/completions', async (request, reply) => {
    const res = await pool.request({
      method: 'POST',
      path: `${base}/chat/completions`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request.body),
    })
    const text = await res.body.text()
    return reply.code(res.statusCode).header('content-type', 'application/json').send(text)
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    url,
    close: async () => {
      await app.close()
      await pool.close()
    },
  }
}
