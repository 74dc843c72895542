/**
 * For bench/attacks.ts, in its own process (so that the attacker's writes cannot delay it): GET
 * /healthz every `intervalMs` on a keep-alive connection, each with its own deadline, until told
 * to stop; then reports every latency (a request that timed out counts as its deadline).
 */
import { Pool } from 'undici'

interface Config {
  url: string
  intervalMs: number
  timeoutMs: number
}

const { url, intervalMs, timeoutMs } = JSON.parse(process.argv[2]!) as Config
const pool = new Pool(url, { connections: 4 })
const latencies: number[] = []
/** When each probe was sent (ms since the epoch), in the order of `latencies`. */
const sentAt: number[] = []
let timedOut = 0
let running = true
const inFlight = new Set<Promise<void>>()

async function probe(): Promise<void> {
  const start = performance.now()
  const sent = Date.now()
  try {
    const res = await pool.request({
      method: 'GET',
      path: '/healthz',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    })
    await res.body.text()
    latencies.push(performance.now() - start)
  } catch {
    timedOut++
    latencies.push(timeoutMs)
  }
  sentAt.push(sent)
}

const timer = setInterval(() => {
  if (!running) return
  const p = probe().finally(() => inFlight.delete(p))
  inFlight.add(p)
}, intervalMs)

process.on('message', async (message: { type: string }) => {
  if (message.type !== 'stop') return
  running = false
  clearInterval(timer)
  await Promise.all(inFlight)
  process.send!({ type: 'result', latencies, sentAt, timedOut })
  await pool.destroy()
  process.exit(0)
})
process.send!({ type: 'ready' })
