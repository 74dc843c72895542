// The part of autocannon's API the bench uses (the package ships no types).
declare module 'autocannon' {
  interface Options {
    url: string
    connections?: number
    pipelining?: number
    /** Seconds. */
    duration?: number
    method?: string
    body?: string
    headers?: Record<string, string>
  }
  interface Histogram {
    p50: number
    p99: number
    average: number
  }
  interface Result {
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    latency: Histogram
    requests: Histogram & { total: number }
  }
  function autocannon(options: Options): Promise<Result>
  export default autocannon
}
