/**
 * sluice in a Fastify app.  Run:  npx tsx examples/fastify.ts   (PORT=… to move it)
 *
 * The plugin limits every route declared after it; `config.sluice` sets a route's own cost or
 * leaves it out.
 */
import Fastify from 'fastify'
import { sluice } from '../src/http/fastify.js' // in your app: from 'sluice/fastify'
import { generateApiKey, hashApiKey } from '../src/http/index.js' // in your app: from 'sluice/http'
import { banner, estimateTokens, fakeCompletion } from './fake-model.js'

const demoKey = generateApiKey()
const app = Fastify({ logger: false })
await app.register(sluice, { keys: [{ hash: hashApiKey(demoKey), tier: 'service', name: 'demo' }] })
app.sluice.events.on('alert', (e) =>
  console.log(`alert: ${e.subject} used ${Math.round(e.used * 100)}% of "${e.limit.name}"`),
)

app.get('/hello', async (request) => ({
  hello: 'world',
  you: request.sluice?.identity?.subject,
  warning: request.sluice?.warning,
}))

app.post(
  '/v1/chat/completions',
  { config: { sluice: { cost: (request) => ({ requests: 1, tokens: estimateTokens(request.body) }) } } },
  async (request) => {
    const completion = await fakeCompletion(request.body)
    await request.sluice?.settle({ tokens: completion.usage.total_tokens })
    return completion
  },
)

// Not limited at all.
app.get('/healthz', { config: { sluice: false } }, async () => ({ status: 'ok' }))

const port = Number(process.env.PORT ?? 3000)
await app.listen({ port, host: '0.0.0.0' })
banner('fastify', port, demoKey)
