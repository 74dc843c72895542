/**
 * sluice in an Express app.  Run:  npx tsx examples/express.ts   (PORT=… to move it)
 *
 * - anonymous callers are limited per IP, holders of the demo key per key (the default tiers);
 * - /v1/chat/completions reserves an estimate of its tokens and settles the real usage;
 * - a JSON `warning` field appears when a limit is nearly spent; alerts are logged.
 */
import express from 'express'
import { sluice } from '../src/http/express.js' // in your app: from 'sluice/express'
import { generateApiKey, hashApiKey } from '../src/http/index.js' // in your app: from 'sluice/http'
import { banner, estimateTokens, fakeCompletion } from './fake-model.js'

const demoKey = generateApiKey()
const limit = sluice({
  // The registry keeps hashes only; the key itself is printed once at start-up.
  keys: [{ hash: hashApiKey(demoKey), tier: 'service', name: 'demo' }],
})
limit.core.events.on('alert', (e) =>
  console.log(`alert: ${e.subject} used ${Math.round(e.used * 100)}% of "${e.limit.name}"`),
)

const app = express()
app.use(express.json())

// The one-line install: each request counts 1 against its tier.
app.get('/hello', limit, (req, res) => {
  res.json({ hello: 'world', you: req.sluice?.identity?.subject, warning: req.sluice?.warning })
})

// A model route: reserve the estimated tokens up front, settle what was really used.
app.post(
  '/v1/chat/completions',
  limit.withCost((req) => ({ requests: 1, tokens: estimateTokens(req.body) })),
  async (req, res) => {
    const completion = await fakeCompletion(req.body)
    await req.sluice?.settle({ tokens: completion.usage.total_tokens })
    res.json(completion)
  },
)

const port = Number(process.env.PORT ?? 3000)
app.listen(port, () => banner('express', port, demoKey))
