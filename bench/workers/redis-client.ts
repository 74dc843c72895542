/** A client process of the scaling table: one limiter (sluice or the peer) driven from this process. */
import { peerOp, peerRedisOneLimit, RedisStore, sluiceOneLimit, sluiceOp, subjects } from '../contenders.js'
import { send, serve, workerConfig } from '../harness/child.js'
import { drive, type Operation } from '../harness/drive.js'
import { newClient } from '../harness/redis.js'

interface Config {
  url: string
  /** Instead of `url`: the nodes of a Redis Cluster (sluice only; the store makes its Cluster client). */
  nodes?: string[]
  contender: 'sluice' | 'peer'
  inFlight: number
  keys: number
}

const config = workerConfig<Config>()
const client = config.nodes ? undefined : newClient(config.url)
await client?.ping()
const subjectOf = subjects(config.keys)
let store: RedisStore | undefined
let op: Operation
if (config.nodes) {
  if (config.contender !== 'sluice') throw new Error('a Redis Cluster is measured for sluice only')
  store = new RedisStore({ nodes: config.nodes })
  await store.whenReady()
  op = sluiceOp(sluiceOneLimit(store), subjectOf)
} else if (config.contender === 'sluice') {
  if (!client) throw new Error('no client')
  store = new RedisStore({ client })
  op = sluiceOp(sluiceOneLimit(store), subjectOf)
} else {
  if (!client) throw new Error('no client')
  op = peerOp(peerRedisOneLimit(client), subjectOf)
}

// Counts every operation that ends, those the drive no longer counts after its deadline too: the
// work the store did, for per-decision costs read from Redis.
let completed = 0
const counted: Operation = async (key) => {
  const ok = await op(key)
  completed++
  return ok
}

serve(
  async (m) => {
    if (m.type !== 'run') return undefined
    completed = 0
    const r = await drive(counted, {
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
      completed,
    }
  },
  async () => {
    await store?.close()
    await client?.quit()
  },
)
send({ type: 'ready' })
