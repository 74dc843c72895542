/**
 * The abuse detectors in the request path (src/core/detectors/ decides, a DetectorStore keeps
 * the state): before admission, a prompt loop, a shared key or a standing flag may refuse the
 * request; after it, its cost and its share of its limits feed spend velocity and slow scraping;
 * failed keys feed the gateway-wide stuffing count. Each raised level is one `detection` event —
 * emitted, logged, counted, posted to the webhook and kept for operators — reported by the one
 * instance whose store step raised it.
 */
import type { EventEmitter } from 'node:events'
import {
  anyCountsCountries,
  type CheckOutcome,
  checkStep,
  countsCountries,
  type DetectionLevel,
  type DetectorName,
  type DetectorSet,
  type DetectorsInput,
  detectorSetFor,
  LEVEL_NAMES,
  type Raised,
  type Refused,
  type ResolvedDetectors,
  recordStep,
  resolveDetectors,
} from '../core/detectors/index.js'
import { describe, SluiceInputError } from '../core/errors.js'
import type { Decision } from '../limiter.js'
import type { SluiceMetrics } from '../metrics.js'
import { detectorStoreFor } from '../store/detectors/for-store.js'
import type { DetectorStore } from '../store/detectors/types.js'
import type { Store } from '../store/types.js'
import type { DetectionEvent, SluiceEvents, SluiceLogger } from './events.js'
import { type CountryLookup, type GeoIpOption, geoIpOf } from './geoip.js'
import { addRetryHeaders, formatDuration } from './headers.js'
import type { Identity } from './identity.js'
import type { ErrorBody } from './responses.js'
import { type ResolvedWebhook, WebhookSender } from './webhook.js'

/** The `detectors` option: which detectors, their thresholds, where their state lives. */
export interface DetectorsOptions<Req = unknown> extends DetectorsInput {
  /** Where detector state lives (default: Redis when `store` is a RedisStore, else this process). */
  store?: DetectorStore
  /** The prompt of a request, for loop detection (the gateway reads it from the body itself). */
  prompt?: (req: Req) => string | undefined
  /**
   * Countries of client addresses, for `sharedKey.countriesAt`: a MaxMind DB file (opened once,
   * here) or a lookup already opened (src/http/geoip.ts).
   */
  geoip?: GeoIpOption
}

/** What a refused request is answered. */
export interface DetectionRefusal {
  status: 403 | 429
  headers: Record<string, string>
  body: ErrorBody
  detector: DetectorName
}

/** What check() answers when nothing is refused at once. */
const NOTHING: Promise<undefined> = Promise.resolve(undefined)

const CODES: Record<DetectorName, string> = {
  loop: 'prompt_loop',
  spend: 'spend_spike',
  sharedKey: 'shared_key',
  scraping: 'scraping',
  stuffing: 'credential_stuffing',
}

export interface DetectorsDeps {
  store: Store
  prefix: string | undefined
  events: EventEmitter<SluiceEvents>
  logger: SluiceLogger | undefined
  webhook: ResolvedWebhook | undefined
  metrics: SluiceMetrics | undefined
  isShadow: (tier: string) => boolean
}

/** The detectors of one Sluice. */
export class Detectors<Req = unknown> {
  readonly options: ResolvedDetectors
  readonly store: DetectorStore
  private readonly prompt: ((req: Req) => string | undefined) | undefined
  private readonly geoip: CountryLookup | undefined
  private readonly sets = new Map<string, DetectorSet>()
  private readonly webhook: WebhookSender<DetectionEvent> | undefined
  private readonly pending = new Set<Promise<unknown>>()

  constructor(
    input: DetectorsOptions<Req>,
    private readonly deps: DetectorsDeps,
  ) {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new SluiceInputError(`detectors must be an object, got ${describe(input)}`)
    }
    const { store, prompt, geoip, ...rest } = input
    if (prompt !== undefined && typeof prompt !== 'function') {
      throw new SluiceInputError(`detectors.prompt must be a function, got ${describe(prompt)}`)
    }
    if (store !== undefined && (typeof store !== 'object' || typeof store?.check !== 'function')) {
      throw new SluiceInputError(`detectors.store must be a DetectorStore, got ${describe(store)}`)
    }
    this.options = resolveDetectors(rest, 'detectors')
    if (geoip === undefined && anyCountsCountries(this.options)) {
      throw new SluiceInputError(
        'detectors.sharedKey.countriesAt and blockCountriesAt need a GeoIP database: set detectors.geoip (geoip.database in sluice.yaml)',
      )
    }
    this.geoip = geoip === undefined ? undefined : geoIpOf(geoip, 'detectors.geoip')
    this.prompt = prompt
    this.store = store ?? detectorStoreFor(deps.store, deps.prefix ?? 'sluice:')
    const hook = deps.webhook
    this.webhook =
      hook?.events.has('detection') === true
        ? new WebhookSender<DetectionEvent>(hook, (attempts, error, payload) => {
            deps.events.emit('webhookError', { url: hook.url, attempts, error, payload })
            deps.logger?.warn({ url: hook.url, attempts, error }, 'sluice webhook delivery failed')
          })
        : undefined
  }

  /** The last subject's set and what it was found by (most calls come from few keys). */
  private last: { tier: string; keyId: string | undefined; set: DetectorSet } | undefined

  /** The detectors of a subject: its key's, else its tier's, else the base set. */
  setFor(tier: string, keyId: string | undefined): DetectorSet {
    // The same tier and key as the call before: no text joined and hashed to look it up again.
    const last = this.last
    if (last !== undefined && last.tier === tier && last.keyId === keyId) return last.set
    const id = `${tier}\n${keyId ?? ''}`
    let set = this.sets.get(id)
    if (set === undefined) {
      set = detectorSetFor(this.options, tier, keyId)
      if (this.sets.size > 10_000) this.sets.clear()
      this.sets.set(id, set)
    }
    this.last = { tier, keyId, set }
    return set
  }

  /** The prompt the app's `prompt` hook finds in a request. */
  promptOf(req: Req): string | undefined {
    return this.prompt?.(req)
  }

  /**
   * Before admission: observes the request and answers a refusal when a standing flag owes one
   * (never in shadow mode). Detection never stops a request because the store failed: it is
   * logged and the request goes on to its limits.
   */
  check(identity: Identity, prompt: string | undefined): Promise<DetectionRefusal | undefined> {
    const answer = this.checkNow(identity, prompt)
    if (answer === undefined) return NOTHING
    return answer instanceof Promise ? answer : Promise.resolve(answer)
  }

  /**
   * check(), answered at once when the store answers at once (memory): no promise and no turn of
   * the event loop for the caller that can take the answer as it is (the gateway's call path).
   * With `more`, the prompt is `[prompt, ...more].join('\n')`, fingerprinted without the join.
   */
  checkNow(
    identity: Identity,
    prompt: string | undefined,
    more?: readonly string[],
  ): DetectionRefusal | undefined | Promise<DetectionRefusal | undefined> {
    const set = this.setFor(identity.tier, identity.keyId)
    const isKey = identity.kind === 'key'
    // The country is looked up (in memory) only for keys whose shared-key detector counts countries.
    const country =
      isKey && this.geoip !== undefined && identity.ip !== undefined && countsCountries(set)
        ? (this.geoip.country(identity.ip) ?? '')
        : undefined
    const step = checkStep(set, {
      prompt,
      more,
      address: identity.ipGroup ?? identity.ip,
      isKey,
      country,
    })
    if (step === undefined) return undefined
    if (this.deps.isShadow(identity.tier)) step.enforce = []
    let outcome: CheckOutcome | Promise<CheckOutcome>
    try {
      outcome = this.store.check(identity.subject, step)
    } catch (error) {
      this.storeFailed(error)
      return undefined
    }
    if (!(outcome instanceof Promise)) return this.answered(identity, set, outcome)
    return outcome.then(
      (o) => this.answered(identity, set, o),
      (error: unknown) => {
        this.storeFailed(error)
        return undefined
      },
    )
  }

  /** A check's outcome: its raised levels reported, the refusal it owes. */
  private answered(identity: Identity, set: DetectorSet, o: CheckOutcome): DetectionRefusal | undefined {
    for (const r of o.raised) this.report(identity, r, set)
    return o.refused === undefined ? undefined : this.refusal(o.refused)
  }

  /**
   * After admission: feeds spend velocity (tokens, usd) and slow scraping (the decision's most
   * used limit). In the background: never awaited by a request.
   */
  record(
    identity: Pick<Identity, 'subject' | 'tier' | 'keyId' | 'kind'>,
    cost: { tokens: number; usd: number },
    decision: Decision | undefined,
  ): void {
    const set = this.setFor(identity.tier, identity.keyId)
    const step = recordStep(set, cost, decision === undefined ? undefined : usedShare(decision))
    if (step === undefined) return
    let raised: Raised[] | Promise<Raised[]>
    try {
      raised = this.store.record(identity.subject, step)
    } catch (error) {
      this.storeFailed(error)
      return
    }
    // A store that answers at once (memory): reported now, nothing left in the background.
    if (!(raised instanceof Promise)) {
      for (const r of raised) this.report(identity, r, set)
      return
    }
    this.background(
      raised.then(
        (all) => {
          for (const r of all) this.report(identity, r, set)
        },
        (error: unknown) => this.storeFailed(error),
      ),
    )
  }

  /**
   * A failed key from `address`, with its prefix when it has one: the gateway-wide stuffing count
   * and the count per key prefix. In the background.
   */
  failure(address: string, prefix?: string): void {
    const o = this.options.stuffing
    if (o === false) return
    const step = {
      address,
      prefix,
      windowMs: o.windowMs,
      alertAt: o.alertAt,
      addressesAt: o.addressesAt,
      prefixAddressesAt: o.prefixAddressesAt,
      maxPrefixes: o.maxPrefixes,
    }
    this.background(
      this.store.failure(step).then(
        (raised) => {
          for (const r of raised) {
            const subject = r.prefix === undefined ? 'gateway' : `key-prefix:${r.prefix}`
            this.report({ subject, tier: '-' }, r, undefined, o.shadow)
          }
        },
        (error: unknown) => this.storeFailed(error),
      ),
    )
  }

  /** Waits for background steps and webhook deliveries in progress. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
    await this.webhook?.flush()
  }

  private background(p: Promise<unknown>): void {
    this.pending.add(p)
    void p.finally(() => this.pending.delete(p))
  }

  private lastFailure = 0
  private storeFailed(error: unknown): void {
    this.deps.metrics?.recordDetectorError()
    // One line a minute at most: an outage of the store is reported by the store's own guard.
    const now = Date.now()
    if (now - this.lastFailure < 60_000) return
    this.lastFailure = now
    this.deps.logger?.warn(
      { err: String(error) },
      'sluice detectors: the store failed; requests go on unobserved',
    )
  }

  private report(
    who: { subject: string; tier: string },
    r: Raised,
    set: DetectorSet | undefined,
    shadowOverride?: boolean,
  ): void {
    const o = set?.[r.detector as keyof DetectorSet]
    const shadow =
      shadowOverride ?? (this.deps.isShadow(who.tier) || (o !== undefined && o !== false && o.shadow))
    const level = LEVEL_NAMES[r.level] as DetectionLevel
    const event: DetectionEvent = {
      event: 'sluice.detection',
      detector: r.detector,
      level,
      subject: who.subject,
      tier: who.tier,
      shadow,
      value: r.value,
      threshold: r.threshold,
      ...(r.addresses !== undefined && { addresses: r.addresses }),
      ...(r.countries !== undefined && { countries: r.countries }),
      ...(r.prefix !== undefined && { prefix: r.prefix }),
      message: messageOf(who.subject, r, level, shadow, learnedBy(r, set)),
      at: new Date().toISOString(),
    }
    this.deps.events.emit('detection', event)
    this.deps.metrics?.recordDetection(r.detector, level, shadow)
    this.deps.logger?.warn(
      {
        subject: event.subject,
        tier: event.tier,
        detector: event.detector,
        level,
        shadow,
        value: r.value,
        threshold: r.threshold,
        addresses: r.addresses,
        ...(r.countries !== undefined && { countries: r.countries }),
      },
      `sluice detection: ${event.message}`,
    )
    this.webhook?.send(event)
    this.background(this.store.log({ ...event }).catch((error: unknown) => this.storeFailed(error)))
  }

  private refusal(refused: Refused): DetectionRefusal {
    const forGood = !Number.isFinite(refused.retryAfterMs)
    const headers: Record<string, string> = {}
    // The client's automatic retry would send the same request the detector objects to.
    addRetryHeaders(headers, refused.retryAfterMs, false)
    const wait = forGood ? 'until an operator clears it' : `for ${formatDuration(refused.retryAfterMs)}`
    const why: Record<DetectorName, string> = {
      loop:
        refused.level === 3
          ? `This API key or client sent the same prompt too many times in a row and is blocked ${wait}.`
          : `This API key or client is sending the same prompt over and over (a loop?) and is throttled: try again ${wait} with a different request.`,
      spend: `Spending by this API key or client rose far above its usual rate and is held to that rate until an operator clears it; the next share is available ${wait}.`,
      sharedKey: `This API key is being used from more addresses or countries than expected (shared or leaked?) and is blocked ${wait}.`,
      scraping: `This API key or client has kept at its rate limit for a long time (scraping?) and is held below it: try again ${wait}.`,
      stuffing: `Refused ${wait}.`,
    }
    return {
      status: forGood ? 403 : 429,
      headers,
      body: {
        error: {
          message: why[refused.detector],
          type: 'abuse_detected',
          param: null,
          code: CODES[refused.detector],
        },
      },
      detector: refused.detector,
    }
  }
}

/** The share used of the decision's most used limit (0..1). */
function usedShare(decision: Decision): number {
  let used = 0
  for (const l of decision.limits) {
    if (l.limit > 0 && l.kind !== 'concurrency') used = Math.max(used, (l.limit - l.remaining) / l.limit)
  }
  return Math.min(1, used)
}

/** Whether a shared-key alert came from the key's learned threshold rather than the fixed one. */
function learnedBy(r: Raised, set: DetectorSet | undefined): boolean {
  const o = set?.sharedKey
  return (
    r.detector === 'sharedKey' &&
    r.by !== 'countries' &&
    r.level === 1 &&
    o !== undefined &&
    o !== false &&
    r.threshold < o.alertAt
  )
}

function messageOf(
  subject: string,
  r: Raised,
  level: DetectionLevel,
  shadow: boolean,
  learned = false,
): string {
  const act = shadow
    ? `would ${level}`
    : level === 'alert'
      ? 'alert'
      : level === 'throttle'
        ? 'throttled'
        : 'blocked'
  const n = Number.isInteger(r.value) ? String(r.value) : r.value.toFixed(4)
  switch (r.detector) {
    case 'loop':
      return `${subject} sent the same prompt ${n} times (threshold ${r.threshold}): ${act}`
    case 'spend':
      return `${subject} spent ${n} in one interval, over ${r.threshold.toFixed(2)} (its baseline × factor): ${act}`
    case 'sharedKey': {
      const addresses = `addresses ${(r.addresses ?? []).slice(0, 20).join(', ')}`
      const countries = r.countries === undefined ? '' : `; countries ${r.countries.join(', ')}`
      if (r.by === 'countries') {
        return `${subject} was used from ${n} countries (threshold ${r.threshold}): ${act}${countries}; ${addresses}`
      }
      return `${subject} was used from ${n} addresses (threshold ${r.threshold}${learned ? ', learned from its history' : ''}): ${act}; ${addresses}${countries}`
    }
    case 'scraping':
      return `${subject} stayed at its limit for ${n} intervals in a row: ${act}`
    case 'stuffing':
      if (r.prefix !== undefined) {
        return `failed API keys with the prefix ${r.prefix} from ${n} addresses (threshold ${r.threshold}): ${act}; addresses ${(r.addresses ?? []).slice(0, 20).join(', ')}`
      }
      return `failed API keys: ${n} (threshold ${r.threshold}) across ${(r.addresses ?? []).length} addresses: ${act}`
  }
}
