/** A client process of the scaling table: one limiter (sluice or the peer) driven from this process. */
import { peerOp, peerRedisOneLimit, RedisStore, sluiceOneLimit, sluiceOp, subjects } from '../contenders.js'
import { send, serve, workerConfig } from '../harness/child.js'
import { drive, type Operation } from '../harness/drive.js'
import { newClient } from '../harness/redis.js'

interface Config {
  url: string
  contender: 'sluice' | 'peer'
  inFlight: number
  keys: number
}

const config = workerConfig<Config>()
const client = newClient(config.url)
await client.ping()
const subjectOf = subjects(config.keys)
let store: RedisStore | undefined
let op: Operation
if (config.contender === 'sluice') {
  store = new RedisStore({ client })
  op = sluiceOp(sluiceOneLimit(store), subjectOf)
} else {
  op = peerOp(peerRedisOneLimit(client), subjectOf)
}

serve(
  async (m) => {
    if (m.type !== 'run') return undefined
    const r = await drive(op, {
      inFlight: config.inFlight,
      keys: config.keys,
      sampleEvery: 1,
      durationMs: m.durationMs,
    })
    return {
      type: 'done',
      ops: r.ops,
      allowed: r.allowed,
      elapsedMs: r.elapsedMs,
      latencies: m.phase === 'measure' ? r.latencies.toArray() : new Float64Array(0),
    }
  },
  async () => {
    await store?.close()
    await client.quit()
  },
)
send({ type: 'ready' })
