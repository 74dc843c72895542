import type { Dispatcher, Pool } from 'undici'

/**
 * Sends `count` calls, `inFlight` at a time, the n-th as `requestOf(n)`; throws on any answer but
 * 200 (a bench's figures would lie).
 */
export async function sendCalls(
  pool: Pool,
  count: number,
  inFlight: number,
  requestOf: (n: number) => Dispatcher.RequestOptions,
): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < count) {
      const r = await pool.request(requestOf(next++))
      const text = await r.body.text()
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}: ${text.slice(0, 300)}`)
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane))
}
