/**
 * sluice in a Hono app (on @hono/node-server).  Run:  npx tsx examples/hono.ts   (PORT=… to move it)
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { sluice } from '../src/http/hono.js' // in your app: from 'sluice/hono'
import { generateApiKey, hashApiKey } from '../src/http/index.js' // in your app: from 'sluice/http'
import { banner, estimateTokens, fakeCompletion } from './fake-model.js'

const demoKey = generateApiKey()
const limit = sluice({ keys: [{ hash: hashApiKey(demoKey), tier: 'service', name: 'demo' }] })
limit.core.events.on('alert', (e) =>
  console.log(`alert: ${e.subject} used ${Math.round(e.used * 100)}% of "${e.limit.name}"`),
)

const app = new Hono()

app.get('/hello', limit, (c) =>
  c.json({ hello: 'world', you: c.get('sluice').identity?.subject, warning: c.get('sluice').warning }),
)

// The cost may be async: here it reads the JSON body (Hono keeps it for the handler) to
// estimate the tokens; the handler settles the real usage.
app.post(
  '/v1/chat/completions',
  limit.withCost(async (c) => ({
    requests: 1,
    tokens: estimateTokens(await c.req.json().catch(() => ({}))),
  })),
  async (c) => {
    const completion = await fakeCompletion(await c.req.json().catch(() => ({})))
    await c.get('sluice').settle({ tokens: completion.usage.total_tokens })
    return c.json(completion)
  },
)

const port = Number(process.env.PORT ?? 3000)
serve({ fetch: app.fetch, port }, () => banner('hono', port, demoKey))
