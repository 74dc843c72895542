/**
 * For the gateway rows, in its own process: either the gateway's mock upstream alone, or the
 * gateway (`startGateway`) in front of a mock upstream that runs in another process.
 */
import { loadMockUpstream, loadStartGateway } from '../adapters.js'
import { send, serve, workerConfig } from '../harness/child.js'

interface Config {
  role: 'mock' | 'gateway'
  /** gateway: the mock's base URL (with /v1). */
  upstreamUrl?: string
  store?: 'memory' | 'redis'
  redisUrl?: string
}

const config = workerConfig<Config>()
let close: () => Promise<void>
let url: string

if (config.role === 'mock') {
  const mock = await loadMockUpstream()
  if (!mock.ok) throw new Error(mock.reason)
  const upstream = await mock.value({ port: 0 })
  url = upstream.url
  close = () => upstream.close()
} else {
  const start = await loadStartGateway()
  if (!start.ok) throw new Error(start.reason)
  // Wired when the gateway lands: its options name the upstream, the store and a port of 0.
  const gateway = (await start.value({
    port: 0,
    host: '127.0.0.1',
    upstreamUrl: config.upstreamUrl,
    store: config.store === 'redis' ? { redisUrl: config.redisUrl } : { memory: true },
  })) as { url: string; close(): Promise<void> }
  url = gateway.url
  close = () => gateway.close()
}

serve(
  async () => undefined,
  () => close(),
)
send({ type: 'ready', info: { url } })
