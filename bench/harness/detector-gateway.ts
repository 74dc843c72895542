/**
 * The gateway the detector benches measure (the `detectors` row, bench/detector-cpu.ts,
 * bench/gateway-instructions.ts --detectors, bench/detector-commands.ts): one key of the service
 * tier, a new prompt every call so that no loop fires, every detector at its defaults and a spend
 * floor no call reaches (they measure the observing, not the refusing) — or the detectors off.
 */
import { Worker } from './child.js'
import { benchChatCall } from './gateway-config.js'

export const API_KEY = 'sk-sluice-vhn9jUn3oaGiugXwZvmQGnaWd8IWwMPqPJBk1trVA1U'
export const DETECTORS = { spend: { floorPerMinute: 1e12 } }
/** Calls in flight to each gateway. */
export const DETECTOR_IN_FLIGHT = 16

/** The n-th call of the detectors' workload: varied prompts, so that no loop fires. */
export function chatRequest(n: number) {
  return benchChatCall(API_KEY, `Question ${n}: say hello in ${n % 97} words, please.`)
}

const WORKER = new URL('../workers/gateway-server.ts', import.meta.url)

/** The mock upstream, in a process of its own, from the sluice build at `sluice` (a file URL). */
export function startDetectorMock(sluice: string): Promise<Worker> {
  return Worker.start(WORKER, { role: 'mock', sluice })
}

export interface DetectorGatewayOptions {
  /** The sluice checkout to run (its built dist/), as a file URL ending in `/`. */
  sluice: string
  upstreamUrl: string
  on: boolean
  /** Its Redis; a MemoryStore without one. */
  redisUrl?: string | undefined
  /** Its store keys' prefix (gateways sharing a Redis must not share limits). */
  prefix?: string
  /** More flags for its Node process, e.g. --cpu-prof. */
  execArgv?: string[]
}

/** The detectors' gateway, detectors on or off, in a process of its own. */
export function startDetectorGateway(o: DetectorGatewayOptions): Promise<Worker> {
  return Worker.start(
    WORKER,
    {
      role: 'gateway',
      sluice: o.sluice,
      store: o.redisUrl === undefined ? 'memory' : 'redis',
      redisUrl: o.redisUrl,
      // A loaded 2-core machine can hold a Redis answer past the default 100 ms: not an outage here.
      storeTimeoutMs: 5000,
      prefix: o.prefix,
      apiKey: API_KEY,
      upstreamUrl: o.upstreamUrl,
      ...(o.on && { detectors: DETECTORS }),
    },
    o.execArgv ?? [],
  )
}
