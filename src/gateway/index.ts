import type { AddressInfo } from 'node:net'
import { type Logger, pino } from 'pino'
import { SluiceInputError } from '../core/errors.js'
import { generateApiKey, hashApiKey, type KeyConfig, Sluice } from '../http/index.js'
import { MemoryStore } from '../store/memory.js'
import { RedisStore } from '../store/redis/store.js'
import type { Store } from '../store/types.js'
import { Accounting } from './accounting.js'
import { ConfigError, parseConfig } from './config/load.js'
import type { GatewayConfig, GatewayConfigInput } from './config/schema.js'
import { sluiceOptions } from './http-options.js'
import { Ledger } from './ledger.js'
import type { MockUpstream } from './mock/server.js'
import { ModelTable } from './models.js'
import { PriceTable } from './prices.js'
import { buildServer } from './server.js'
import { Upstream } from './upstream.js'

export interface GatewayOptions {
  /** Environment for upstream API keys (`apiKeyEnv`) and SLUICE_DEMO_KEY (default process.env). */
  env?: Record<string, string | undefined>
  /** A pino logger, or false for none (default: pino to stderr at config.log.level). */
  logger?: Logger | false
  /** Use this store instead of the one the config describes (the caller closes it). */
  store?: Store
}

export interface Gateway {
  /** http://host:port of the gateway; OpenAI clients use `${url}/v1` as their base URL. */
  url: string
  port: number
  config: GatewayConfig
  sluice: Sluice
  store: Store
  accounting: Accounting
  ledger: Ledger | undefined
  upstreams: ReadonlyMap<string, Upstream>
  /** The built-in mock upstream, when the config routes anything to it. */
  mock: MockUpstream | undefined
  /** The demo key made at start-up when no key is configured (service tier), else undefined. */
  demoKey: string | undefined
  /** Stops accepting, settles every open reservation, flushes the ledger, closes upstreams and the store. */
  close(): Promise<void>
}

function makeStore(config: GatewayConfig): Store {
  if (config.store.type === 'redis') return new RedisStore({ url: config.store.url })
  return new MemoryStore(config.store.maxKeys === undefined ? {} : { maxKeys: config.store.maxKeys })
}

/** Waits for the store to answer (Redis still connecting), up to a deadline; false if it never did. */
async function storeReady(store: Store, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    try {
      await store.ping()
      return true
    } catch {
      if (Date.now() >= deadline) return false
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/** Upstream names the config can route to: the default and every models entry's. */
function usedUpstreams(config: GatewayConfig): string[] {
  const names = new Set([config.defaultUpstream])
  for (const model of Object.values(config.models))
    if (model.upstream !== undefined) names.add(model.upstream)
  return [...names]
}

/** Builds the demo key (service tier) when the config has no key and allows one. */
function demoKeyFor(
  config: GatewayConfig,
  env: Record<string, string | undefined>,
): { key: string; entry: KeyConfig } | undefined {
  if (!config.auth.demoKey || config.auth.keys.length > 0) return undefined
  const key = env.SLUICE_DEMO_KEY || generateApiKey()
  return { key, entry: { hash: hashApiKey(key), tier: 'service', id: 'demo', name: 'demo' } }
}

/**
 * Checks what the schema cannot: that the HTTP core accepts the tiers, keys and lists.
 * Throws ConfigError.
 */
export function checkConfig(config: GatewayConfig): void {
  const store = new MemoryStore({ sweepIntervalMs: 3_600_000 })
  try {
    new Sluice(sluiceOptions(config, { store, logger: false }))
  } catch (error) {
    if (error instanceof SluiceInputError) throw new ConfigError([error.message])
    throw error
  } finally {
    void store.close()
  }
}

/**
 * Starts `sluice serve` in this process: validates the config (a sluice.yaml object, partial is
 * fine), opens the store, starts the upstreams (the mock on a free port) and listens.
 */
export async function startGateway(
  input: GatewayConfigInput | GatewayConfig = {},
  options: GatewayOptions = {},
): Promise<Gateway> {
  const env = options.env ?? process.env
  const config = parseConfig(input)
  checkConfig(config)
  const logger =
    options.logger === false
      ? pino({ level: 'silent' })
      : (options.logger ??
        pino(
          {
            name: 'sluice',
            level: config.log.level,
            redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
          },
          pino.destination({ dest: 2, sync: false }),
        ))
  const store = options.store ?? makeStore(config)
  const ownsStore = options.store === undefined
  const demo = demoKeyFor(config, env)
  const sluice = new Sluice(
    sluiceOptions(config, {
      store,
      logger: options.logger === false ? false : logger.child({ component: 'limits' }),
      extraKeys: demo ? [demo.entry] : [],
    }),
  )
  const models = new ModelTable(config)
  const upstreams = new Map<string, Upstream>()
  const ledger =
    config.ledger.path === false
      ? undefined
      : new Ledger({
          path: config.ledger.path,
          maxSize: config.ledger.maxSize,
          keep: config.ledger.keep,
          onError: (error) => logger.error({ err: error }, 'usage ledger write failed'),
        })
  const prices = new PriceTable(config.prices)
  const accounting = new Accounting({
    prices,
    ledger,
    onUpstreamError: config.accounting.onUpstreamError,
    onSettleError: (error, charge) =>
      logger.error({ err: error, subject: charge.info.subject }, 'settling a reservation failed'),
  })

  const cleanup = async () => {
    await Promise.all([...upstreams.values()].map((u) => u.close()))
    await ledger?.close()
    await sluice.close()
    if (ownsStore) await store.close()
  }

  try {
    if (!(await storeReady(store, 5_000))) {
      logger.warn('the store does not answer yet; requests are refused with 503 until it does (see /readyz)')
    }
    for (const name of usedUpstreams(config)) {
      const upstream = await Upstream.create(name, config.upstreams[name]!, env, models.encodingOf)
      upstreams.set(name, upstream)
      if (
        upstream.config.type === 'openai' &&
        !upstream.hasKey &&
        /api\.openai\.com/.test(upstream.baseUrl)
      ) {
        logger.warn(`upstream "${name}" has no API key: set ${upstream.config.apiKeyEnv}`)
      }
    }
    const app = buildServer({ config, sluice, store, accounting, models, upstreams, logger })
    await app.listen({ port: config.port, host: config.host })
    const address = app.server.address() as AddressInfo
    const host = address.address.includes(':') ? `[${address.address}]` : address.address
    let closing: Promise<void> | undefined
    return {
      url: `http://${host}:${address.port}`,
      port: address.port,
      config,
      sluice,
      store,
      accounting,
      ledger,
      upstreams,
      mock: [...upstreams.values()].find((u) => u.mock !== undefined)?.mock,
      demoKey: demo?.key,
      close: () => {
        closing ??= (async () => {
          await app.close()
          await accounting.settleAll()
          await cleanup()
        })()
        return closing
      },
    }
  } catch (error) {
    await cleanup()
    throw error
  }
}

export { ConfigError, loadConfig, parseConfig } from './config/load.js'
export type { GatewayConfig, GatewayConfigInput } from './config/schema.js'
export { type MockUpstream, type MockUpstreamOptions, startMockUpstream } from './mock/server.js'
