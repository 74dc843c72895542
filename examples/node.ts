/**
 * sluice with plain node:http.  Run:  npx tsx examples/node.ts   (PORT=… to move it)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { generateApiKey, hashApiKey } from '../src/http/index.js' // in your app: from 'sluice/http'
import { sluice } from '../src/http/node.js' // in your app: from 'sluice/node'
import { banner, fakeCompletion } from './fake-model.js'

const demoKey = generateApiKey()
const limit = sluice({ keys: [{ hash: hashApiKey(demoKey), tier: 'service', name: 'demo' }] })
const chatLimit = limit.withCost({ requests: 1, tokens: 500 })
limit.core.events.on('alert', (e) =>
  console.log(`alert: ${e.subject} used ${Math.round(e.used * 100)}% of "${e.limit.name}"`),
)

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = ''
  for await (const chunk of req) text += chunk
  try {
    return JSON.parse(text)
  } catch {
    return {}
  }
}

const server = createServer(async (req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname
  if (path === '/hello') {
    const state = await limit(req, res)
    if (!state) return // sluice answered: 429, 401 or 403
    return json(res, 200, { hello: 'world', you: state.identity?.subject, warning: state.warning })
  }
  if (path === '/v1/chat/completions' && req.method === 'POST') {
    const state = await chatLimit(req, res)
    if (!state) return
    const completion = await fakeCompletion(await readJson(req))
    await state.settle({ tokens: completion.usage.total_tokens })
    return json(res, 200, completion)
  }
  json(res, 404, { error: { message: 'Not found', type: 'invalid_request_error', param: null, code: null } })
})

const port = Number(process.env.PORT ?? 3000)
server.listen(port, () => banner('node:http', port, demoKey))
