import { z } from 'zod'
import { adminConfigSchema } from '../../control/admin/config.js'
import { describe } from '../../core/errors.js'
import { type LimitConfig, limitConfigSchemas } from '../../core/limits.js'
import { parseUtcOffset } from '../../core/period.js'
import { deploymentsSchema, fallbacksSchema } from './deployments-schema.js'
import { detectorsSchema } from './detectors-schema.js'
import { duration, durationOrZero, positive, positiveInt, size } from './primitives.js'
import { trustProxyProblem } from './trust-proxy.js'
import { modelSchema, priceSchema, upstreamSchema } from './upstreams-schema.js'

export type { DeploymentConfig } from './deployments-schema.js'
export type {
  AnthropicUpstreamConfig,
  MockUpstreamConfig,
  ModelConfig,
  OpenAIUpstreamConfig,
  PriceConfig,
  UpstreamConfig,
} from './upstreams-schema.js'
export { ENCODINGS, type EncodingName } from './upstreams-schema.js'

/**
 * The units the gateway charges on every call (accounting.ts reserves requests, tokens and usd;
 * a concurrency limit counts calls in flight). A limit in any other unit would never be charged,
 * so it would never limit anything: a typo such as "dollars" is refused.
 */
export const CHARGED_UNITS = [
  'requests',
  'tokens',
  'usd',
  'concurrent',
  // What a token limit may count instead of every token (accounting.ts: TOKEN_KIND_UNITS).
  'input_tokens',
  'output_tokens',
  'cached_tokens',
] as const
const unit = z
  .string()
  .refine((u) => (CHARGED_UNITS as readonly string[]).includes(u), {
    error: (issue) =>
      `no route ever charges the unit ${describe(issue.input)}, so this limit would never apply; the gateway charges ${CHARGED_UNITS.join(', ')}`,
  })
  .optional()
const limitName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1-64 letters, digits, "_" or "-"')

/**
 * One limit as written in YAML: each algorithm's own schema (its `config` in
 * src/core/algorithms/), told apart by `kind`; converted to a LimitDefinition by the same
 * description (limitFromConfig).
 */
const [firstLimitSchema, ...otherLimitSchemas] = limitConfigSchemas({
  z,
  unit,
  positive,
  positiveInt,
  duration,
})
export const limitSchema = z.discriminatedUnion('kind', [
  firstLimitSchema!,
  ...otherLimitSchemas,
] as never) as z.ZodType<LimitConfig, unknown>
export type { LimitConfig }

const limitsMap = z.record(limitName, limitSchema.nullable())

const fraction = z.number().gt(0).lte(1)

/** Blocking repeat offenders: true/false, or the thresholds. */
const blockSchema = z.union([
  z.boolean(),
  z.strictObject({
    /** Denials within `within` that start a block (default 10 within 1m). */
    after: positiveInt.optional(),
    within: duration.optional(),
    /** Successive block lengths; the last repeats (default 1m, 5m, 15m, 1h). */
    durations: z.array(duration).min(1).optional(),
    /** How long a block level is remembered after it ends (default 24h). */
    forget: duration.optional(),
  }),
])
export type BlockConfig = z.output<typeof blockSchema>

/** What a tier does while Redis cannot answer in time (see docs/operations.md). */
function isUtcOffset(value: string | number): boolean {
  try {
    parseUtcOffset(value)
    return true
  } catch {
    return false
  }
}

const failMode = z.enum(['open', 'closed', 'local'])

/** Waiting in fair order instead of a 429 (docs/queueing.md). */
const queueSchema = z.strictObject({
  /** Longest wait, e.g. "2s": a refusal by a rate limit that passes within it waits. */
  maxWait: duration,
  /** Most requests of the tier waiting on one capacity (default 1000) and of one subject (default 100). */
  maxQueued: positiveInt.optional(),
  maxQueuedPerSubject: positiveInt.optional(),
  /** The tier's share when several wait on one capacity (default 1). */
  weight: positive.optional(),
  /** A waiting ticket's lease (default 3s): a dead instance's waiters leave after it. */
  lease: duration.optional(),
  /** Honour the x-sluice-priority header (high | normal | low) of this tier's requests (default false). */
  priorities: z.boolean().optional(),
})

const tierSchema = z.strictObject({
  /** Whom the tier counts; required for a tier that is not one of the defaults. */
  scope: z.enum(['ip', 'user', 'key']).optional(),
  /** Outage policy of this tier (default: store.failMode); only used with the Redis store. */
  failMode: failMode.optional(),
  /** Merged over the default tier's limits by name; `null` removes a default limit. */
  limits: limitsMap.default({}),
  /** Count and log, but let every request of this tier through. */
  shadow: z.boolean().optional(),
  block: blockSchema.optional(),
  /** Off unless given (for every tier, the anonymous one included). */
  queue: queueSchema.optional(),
})
export type TierConfig = z.output<typeof tierSchema>

const keySchema = z.strictObject({
  /** SHA-256 of the key as 64 hex digits (`sluice keys create` prints it); never the key itself. */
  hash: z
    .string()
    .transform((h) => h.toLowerCase())
    .pipe(z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits (the SHA-256 of the key)')),
  tier: z.string().min(1),
  /** Public id used in subjects (`key:<id>`), logs and the ledger; default: the hash's first 16 digits. */
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "-" or "."')
    .optional(),
  name: z.string().min(1).optional(),
  /** For tiers counted per user: the user the key belongs to. */
  user: z.string().min(1).optional(),
  /** Per-key limits merged over the tier's by name. */
  limits: z.record(limitName, limitSchema).optional(),
  /** A revoked key gets 401 like an unknown one. */
  revoked: z.boolean().optional(),
})
export type KeyConfig = z.output<typeof keySchema>

const redisUrl = z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')

/**
 * Redis (or Redis Cluster) as the store, with the outage policy around it. The outage options are
 * optional here and defaulted by the gateway (store.ts: outagePolicy), so that a plain
 * `{ type: redis, url }` stays exactly that.
 */
const redisStoreSchema = z
  .strictObject({
    type: z.literal('redis'),
    /** One Redis (or Valkey, or a managed Redis)… */
    url: redisUrl.optional(),
    /** …or some seed nodes of a Redis Cluster (credentials and TLS are taken from the first). */
    nodes: z.array(redisUrl).min(1).optional(),
    /** Longest wait for Redis on any call (default 100ms); then the tier's failMode answers. */
    timeout: duration.optional(),
    /** Outage policy of tiers that name none (default closed). */
    failMode: failMode.optional(),
    /** Gateway processes sharing this Redis: in local mode each admits limit ÷ instances (default 1). */
    instances: positiveInt.optional(),
    /**
     * Denials remembered in-process so that a subject hammering an exhausted limit costs no Redis
     * call; false turns it off. maxAge bounds how stale an entry may be (default 1s).
     */
    blockedCache: z
      .union(
        [
          z.literal(false),
          z.strictObject({ maxAge: duration.optional(), maxEntries: positiveInt.optional() }),
        ],
        { error: 'expected false or { maxAge, maxEntries }' },
      )
      .optional(),
  })
  .refine((s) => (s.url === undefined) !== (s.nodes === undefined), {
    message: 'a redis store needs exactly one of url (one Redis) or nodes (Redis Cluster seed nodes)',
  })
export type RedisStoreConfig = z.output<typeof redisStoreSchema>

/**
 * Who may set X-Forwarded-For (and a trusted user header). `true` and ranges that hold every
 * address are refused: with them any client picks its own address and user id.
 */
const trustProxySchema = z
  .union([z.boolean(), z.number(), z.string(), z.array(z.unknown())])
  .transform((value, ctx) => {
    const problem = trustProxyProblem(value)
    if (problem !== undefined) {
      ctx.addIssue({ code: 'custom', message: problem })
      return z.NEVER
    }
    return value as false | number | string[]
  })

const accessList = z.strictObject({
  ips: z.array(z.string().min(1)).optional(),
  users: z.array(z.string().min(1)).optional(),
  /** Key ids or key hashes. */
  keys: z.array(z.string().min(1)).optional(),
})

export const configSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(8787),
  /** Largest request body accepted. */
  bodyLimit: size.default(10 * 1024 * 1024),
  /** Request bodies while they arrive: a stalled or trickling upload is refused with 408 (docs/gateway.md). */
  uploads: z
    .strictObject({
      /** Longest time to receive a whole body. */
      timeout: duration.default(60_000),
      /** Longest silence while a body arrives; also the grace before minRate applies. */
      idleTimeout: duration.default(10_000),
      /** Slowest average upload rate accepted, in bytes per second ("16kb": 16 KiB/s). */
      minRate: size.default(16 * 1024),
      /** Bodies one client address (its IPv6 /64) may be sending at once; more get 429. */
      perIp: positiveInt.default(8),
    })
    .default({ timeout: 60_000, idleTimeout: 10_000, minRate: 16 * 1024, perIp: 8 }),
  store: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('memory'), maxKeys: positiveInt.optional() }),
      redisStoreSchema,
    ])
    .default({ type: 'memory' }),
  /** Prefix of every store key; instances sharing one Redis and one prefix share their limits. */
  prefix: z
    .string()
    .regex(/^[^{}]*$/, 'must not contain braces')
    .default('sluice:'),
  auth: z
    .strictObject({
      /** Refuse requests without an API key (401) instead of counting them per IP (anonymous tier). */
      requireKey: z.boolean().default(false),
      /** Print a demo key (service tier) at start-up when no key is configured. */
      demoKey: z.boolean().default(true),
      keys: z.array(keySchema).default([]),
      /** Headers that carry keys, tried in order (default x-api-key, then Authorization: Bearer). */
      apiKeyHeaders: z.array(z.string().min(1)).min(1).optional(),
      /** Who may set X-Forwarded-For: false (default), a hop count, or addresses/CIDRs. */
      trustProxy: trustProxySchema.optional(),
      forwardedHeader: z.enum(['x-forwarded-for', 'forwarded']).optional(),
      /** A user-id header set by a trusted proxy (needs trustProxy). */
      trustedUserHeader: z.string().min(1).optional(),
      ipv4Subnet: z.number().int().min(1).max(32).optional(),
      ipv6Subnet: z.number().int().min(1).max(128).optional(),
      /** Per-IP limit on requests with invalid keys (default 10 per 10m); false turns it off. */
      failedAuth: z
        .union([
          z.literal(false),
          z.strictObject({ limit: positiveInt.optional(), window: duration.optional() }),
        ])
        .optional(),
    })
    .default({ requireKey: false, demoKey: true, keys: [] }),
  /** Graduated response: warning, alert, block, deny/allow lists, shadow mode. */
  graduated: z
    .strictObject({
      /** Below this share remaining of any limit, responses carry X-RateLimit-Warning (default 0.1). */
      warnAt: fraction.optional(),
      /** Alert once per subject, limit and window when usage crosses this share (default 0.8). */
      alertAt: z.union([z.literal(false), fraction]).optional(),
      block: blockSchema.optional(),
      shadow: z.boolean().optional(),
      /** POST alert (and block) events here. */
      webhook: z
        .union([
          z.url({ protocol: /^https?$/ }),
          z.strictObject({
            url: z.url({ protocol: /^https?$/ }),
            timeout: duration.optional(),
            retries: z.number().int().nonnegative().optional(),
            backoff: duration.optional(),
            headers: z.record(z.string(), z.string()).optional(),
            events: z.array(z.enum(['alert', 'block', 'detection'])).optional(),
          }),
        ])
        .optional(),
      deny: accessList.optional(),
      allow: accessList.optional(),
      /** Cap on the wait advertised after a concurrency denial (default 1s). */
      concurrencyRetryCap: duration.optional(),
      /** Refusals that must wait longer say x-should-retry: false, so SDKs fail fast (default 60s). */
      maxRetryWait: duration.optional(),
    })
    .default({}),
  /** Abuse detectors (docs/abuse.md): off unless given. */
  detectors: detectorsSchema.optional(),
  /** A MaxMind DB file (.mmdb, Country or City) for `sharedKey.countriesAt`; read once at start. */
  geoip: z.strictObject({ database: z.string().min(1) }).optional(),
  /** Rate-limit header groups: true (all), false (none) or { ietf, legacy, openai }. */
  headers: z
    .union([
      z.boolean(),
      z.strictObject({
        ietf: z.boolean().optional(),
        legacy: z.boolean().optional(),
        openai: z.boolean().optional(),
      }),
    ])
    .default(true),
  tiers: z
    .record(
      z
        .string()
        .regex(
          /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
          'expected 1-64 letters, digits, "_", "-" or ".", starting with a letter or digit',
        ),
      tierSchema,
    )
    .default({}),
  upstreams: z.record(z.string().min(1), upstreamSchema).default({}),
  /** Upstream for models no `models` entry routes elsewhere. */
  defaultUpstream: z.string().min(1).default('mock'),
  /** Per model name or glob ("gpt-4o*", "llama*"): upstream, encoding, expected output. */
  models: z.record(z.string().min(1), modelSchema).default({}),
  /** Per model name: the deployments serving it, with the provider accounts' limits (docs/gateway.md). */
  deployments: deploymentsSchema,
  /** Per model name: the model tried when every deployment of it failed before answering or is full. */
  fallbacks: fallbacksSchema,
  /** USD per 1M tokens per model name or glob, merged over the built-in table. */
  prices: z.record(z.string().min(1), priceSchema).default({}),
  accounting: z
    .strictObject({
      /** When the upstream fails before any output: charge the prompt, or refund everything. */
      onUpstreamError: z.enum(['chargePrompt', 'refundAll']).default('chargePrompt'),
      /** Expected completion length when neither the request nor the model config says. */
      defaultOutputTokens: positiveInt.default(256),
    })
    .default({ onUpstreamError: 'chargePrompt', defaultOutputTokens: 256 }),
  ledger: z
    .strictObject({
      /** JSONL file of settled requests; false turns the ledger off. */
      path: z.union([z.string().min(1), z.literal(false)]).default('.sluice/usage.jsonl'),
      /** Rotate the file when it grows past this size. */
      maxSize: size.default(64 * 1024 * 1024),
      /** Rotated files kept (usage.jsonl.1 … .N). */
      keep: positiveInt.default(10),
      /**
       * While the file cannot be written: keep serving (records wait in memory, /readyz says
       * "degraded"), or refuse calls with 503 until it can (/readyz 503).
       */
      onFailure: z.enum(['serve', 'refuse']).default('serve'),
      /** Records kept in memory while the file cannot be written; beyond, records are dropped (and counted). */
      buffer: size.default(16 * 1024 * 1024),
    })
    .default({
      path: '.sluice/usage.jsonl',
      maxSize: 64 * 1024 * 1024,
      keep: 10,
      onFailure: 'serve',
      buffer: 16 * 1024 * 1024,
    }),
  /**
   * The control plane's database: keys, teams, budgets, the ledger and the audit log (docs/admin.md).
   * `sluice serve` opens `.sluice/sluice.db` (SQLite) when this is absent; `false` turns it off.
   */
  database: z
    .union([
      z.literal(false),
      z.strictObject({
        /** `postgres://…` (shared by several instances) or a SQLite file path (default .sluice/sluice.db). */
        url: z.string().min(1).optional(),
        /** Run migrations at start (default true); false: refuse a schema behind the code (`sluice migrate`). */
        migrate: z.boolean().default(true),
        /** Write one ledger row per request to the database (default true). */
        ledger: z.boolean().default(true),
        /** Delete ledger rows older than this (e.g. "90d"); 0 keeps them all. */
        retention: durationOrZero.default(90 * 86_400_000),
        /**
         * A key read from the database is read again after this long even without a change notice
         * (the floor when a notice is lost; default 10s). Past it the cached answer is still used
         * while the new read runs, so no request waits on the database for a known key.
         */
        keyTtl: duration.default(10_000),
        /**
         * The calendar of key, team and user budgets (day, week, month): UTC by default, or a fixed
         * offset such as "+05:30" or "-08:00" (zone names are refused: a day must last 24 hours).
         */
        budgetUtcOffset: z
          .union([z.string().min(1), z.number().int()])
          .refine(isUtcOffset, 'must be a fixed UTC offset such as "+05:30" or "-08:00" (not a zone name)')
          .default(0),
      }),
    ])
    .optional(),
  /** The admin API and dashboard: the SHA-256 of the admin token (or SLUICE_ADMIN_TOKEN). */
  admin: adminConfigSchema.optional(),
  /** Where limiter counts are kept across restarts with the memory store (docs/admin.md). */
  snapshot: z
    .union([
      z.literal(false),
      z.strictObject({
        /** The snapshot file (default .sluice/memory-store.json). */
        path: z.string().min(1).default('.sluice/memory-store.json'),
        /** How often it is written while serving (default 1s): what a `kill -9` may lose. */
        interval: duration.default(1000),
      }),
    ])
    .optional(),
  /** Prometheus metrics on GET /metrics. */
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Also export the process's CPU, memory, event-loop and GC metrics. */
      process: z.boolean().default(true),
    })
    .default({ enabled: true, process: true }),
  /** What SIGTERM (or close()) does with calls still in flight. */
  shutdown: z
    .strictObject({
      /** Calls in flight may finish for this long; then their connections are cut and they settle what they used. */
      deadline: durationOrZero.default(25_000),
      /**
       * The process exits (code 1) this long after the first signal even if the shutdown is stuck
       * (an upstream or a store that does not answer). Default: deadline + 15s.
       */
      hardDeadline: duration.optional(),
    })
    .default({ deadline: 25_000 }),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .default({ level: 'info' }),
})

/** A sluice.yaml as written (every field optional). */
export type GatewayConfigInput = z.input<typeof configSchema>
/** A validated config with every default filled in. */
export type GatewayConfig = z.output<typeof configSchema>
