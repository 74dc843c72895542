import autocannon from 'autocannon'

export interface LoadResult {
  requestsPerSec: number
  p50Ms: number
  p99Ms: number
  ok: number
  /** Responses other than 2xx, errors and timeouts: any of them makes the row suspect. */
  bad: number
}

/**
 * Closed-loop HTTP load with autocannon from this process (the server runs in another one):
 * `connections` requests in flight, no pipelining. autocannon reports latency in whole milliseconds.
 */
export async function load(
  url: string,
  connections: number,
  durationMs: number,
  request: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {},
): Promise<LoadResult> {
  const result = await autocannon({
    url,
    connections,
    pipelining: 1,
    duration: durationMs / 1000,
    method: request.method ?? 'GET',
    ...(request.body === undefined ? {} : { body: request.body }),
    ...(request.headers === undefined ? {} : { headers: request.headers }),
  })
  const ok = result['2xx']
  return {
    requestsPerSec: ok / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    ok,
    bad: result.non2xx + result.errors + result.timeouts,
  }
}
