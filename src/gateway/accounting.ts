import type { Costs, Decision, Limiter, Reservation } from '../limiter.js'
import type { EncodingName } from './config/schema.js'
import { sharedCounter, type TokenCounter } from './counting.js'
import type { Estimate, ReportedUsage, RouteKind } from './dialects/types.js'
import { isoTime } from './iso-time.js'
import type { Ledger, LedgerRecord } from './ledger.js'
import type { CostBreakdown, PriceTable } from './prices.js'
import type { RequestTrace } from './trace.js'

/** How a call ended, as far as accounting cares. */
export type CallEnd =
  /** The upstream answered; `usage` when it reported some, else `text` is counted. */
  | { kind: 'answered'; status: number; usage?: ReportedUsage; text: string }
  /** The client went away; charged the prompt plus what was generated until then. */
  | { kind: 'aborted'; status: number; usage?: ReportedUsage; text: string }
  /** The upstream failed (error status, timeout, dropped connection), possibly after some output. */
  | { kind: 'failed'; status: number; usage?: ReportedUsage; text: string; outcome: 'upstream_error' | 'cut' }

export interface ChargeInfo {
  subject: string
  tier: string
  model: string
  route: RouteKind
  stream: boolean
  estimate: Estimate
  /** The model's encoding, for counting generated text when the upstream reports no usage. */
  encoding: EncodingName
  /** What the request path learned about the request (who, when), for the ledger. */
  trace?: RequestTrace
  /** The deployment serving the call: settles its limits with the tenant's (deployments/routing.ts). */
  routing?: RoutedCharge
}

/** How a call served by a deployment is settled, and what the ledger says of it. */
export interface RoutedCharge {
  readonly deployment: { readonly name: string; readonly upstream: string }
  readonly failed: readonly string[]
  /** Settles the tenant's reservation (when limited) and the deployment's; null refunds both. */
  settle(tenant: Reservation | undefined, costs: Costs | null): Promise<void>
}

export interface AccountingOptions {
  prices: PriceTable
  ledger: Ledger | undefined
  /** Upstream failure before any output: charge the prompt, or refund everything. */
  onUpstreamError: 'chargePrompt' | 'refundAll'
  onSettleError?: (error: unknown, charge: Charge) => void
  /** After each call is settled and recorded (for metrics and logs). */
  onSettled?: (charge: Charge, settlement: Settlement, end: CallEnd) => void
  /** Counts generated text in bounded time (default: the process's shared counter). */
  counter?: TokenCounter
}

/**
 * Units a token limit may count instead of every token: input not read from a cache (plain and
 * cache writes), output (reasoning included) and cache reads. A call is charged in them only when
 * its tier has a limit in that unit (a limiter refuses units it does not know).
 */
export const TOKEN_KIND_UNITS = ['input_tokens', 'output_tokens', 'cached_tokens'] as const
type TokenKindUnit = (typeof TOKEN_KIND_UNITS)[number]

/** What a call is charged once it ended. */
export interface Settlement extends CostBreakdown {
  promptTokens: number
  completionTokens: number
  /** Of the prompt: read from the provider's cache. */
  cachedTokens: number
  /** Of the prompt: written to a 5-minute / 1-hour cache. */
  cacheWriteTokens: number
  cacheWrite1hTokens: number
  /** Of the completion: reasoning tokens. */
  reasoningTokens: number
  tokens: number
  source: LedgerRecord['source']
  outcome: string
  refunded: boolean
}

/** One admitted call's reservation, settled exactly once whatever path the call takes. */
export class Charge {
  private settled: Promise<Settlement> | undefined
  /** What the call has seen so far, kept current while streaming (used if it must be settled early). */
  progress: { usage?: ReportedUsage; text: string } = { text: '' }

  constructor(
    private readonly accounting: Accounting,
    /** Undefined when the call is not limited (allow-listed); a denied one when shadow mode let it through. */
    readonly reservation: Reservation | undefined,
    readonly info: ChargeInfo,
  ) {}

  get decision(): Decision | undefined {
    return this.reservation?.decision
  }

  /** The call counts against the subject's limits (not allow-listed, not let through by shadow mode). */
  get limited(): boolean {
    return this.reservation?.allowed === true
  }

  get finished(): boolean {
    return this.settled !== undefined
  }

  /** Settles the reservation with what the call really cost; later calls return the first result. */
  finish(end: CallEnd): Promise<Settlement> {
    if (!this.settled) this.settled = this.accounting.settle(this, end)
    return this.settled
  }
}

/** Reserves, settles and records calls; keeps every open reservation so shutdown can settle them. */
export class Accounting {
  readonly open = new Set<Charge>()
  private readonly counter: TokenCounter

  constructor(private readonly options: AccountingOptions) {
    this.counter = options.counter ?? sharedCounter()
  }

  /** USD for token counts of a model (12 significant digits: the same number in the store and the ledger). */
  cost(model: string, promptTokens: number, completionTokens: number): number {
    return this.options.prices.cost(model, { promptTokens, completionTokens })
  }

  /**
   * What to reserve for a call: one request, the estimated tokens and their price (no cache assumed:
   * the most the prompt can cost); with `limiter`, also the token kinds its limits count.
   */
  reservationCosts(
    model: string,
    estimate: Estimate,
    limiter?: Pick<Limiter, 'definitions'>,
  ): { requests: number; tokens: number; usd: number } & Costs {
    const costs: { requests: number; tokens: number; usd: number } & Costs = {
      requests: 1,
      tokens: estimate.promptTokens + estimate.outputTokens,
      usd: this.cost(model, estimate.promptTokens, estimate.outputTokens),
    }
    if (limiter !== undefined) {
      for (const d of limiter.definitions) {
        if (d.unit === 'input_tokens') costs.input_tokens = estimate.promptTokens
        else if (d.unit === 'output_tokens') costs.output_tokens = estimate.outputTokens
        else if (d.unit === 'cached_tokens') costs.cached_tokens = 0
      }
    }
    return costs
  }

  track(reservation: Reservation | undefined, info: ChargeInfo): Charge {
    const charge = new Charge(this, reservation, info)
    if (info.trace !== undefined) info.trace.charged = true
    this.open.add(charge)
    return charge
  }

  /** Settles every open reservation with what its call has seen so far (for shutdown). */
  async settleAll(): Promise<void> {
    await Promise.all(
      [...this.open].map((charge) =>
        charge.finish({
          kind: 'aborted',
          status: 503,
          usage: charge.progress.usage,
          text: charge.progress.text,
        }),
      ),
    )
  }

  /** @internal Called once per charge by Charge.finish. */
  async settle(charge: Charge, end: CallEnd): Promise<Settlement> {
    const { info } = charge
    let settlement: Settlement
    try {
      settlement = await this.price(info, end)
    } catch (error) {
      // Counting cannot fail on text; should it, the call is still settled (with the estimate).
      this.options.onSettleError?.(error, charge)
      settlement = await this.price(info, { ...end, usage: undefined, text: '' })
    }
    try {
      const reservation = charge.reservation?.allowed ? charge.reservation : undefined
      if (info.routing !== undefined) {
        const costs = settlement.refunded
          ? null
          : reservation !== undefined
            ? settleCosts(reservation.decision, settlement)
            : { tokens: settlement.tokens, usd: settlement.usd }
        await info.routing.settle(reservation, costs)
      } else if (reservation !== undefined) {
        if (settlement.refunded) await reservation.cancel()
        else await reservation.settle(settleCosts(reservation.decision, settlement))
      }
    } catch (error) {
      this.options.onSettleError?.(error, charge)
    } finally {
      this.open.delete(charge)
    }
    const ledger = this.options.ledger
    if (ledger !== undefined) ledger.append(ledgerRecord(charge, end, settlement))
    this.options.onSettled?.(charge, settlement, end)
    return settlement
  }

  private async price(info: ChargeInfo, end: CallEnd): Promise<Settlement> {
    const outcome = end.kind === 'answered' ? 'ok' : end.kind === 'aborted' ? 'aborted' : end.outcome
    const usage = end.usage
    let promptTokens: number
    let completionTokens: number
    let source: Settlement['source']
    if (usage && !usage.partial) {
      promptTokens = usage.promptTokens
      completionTokens = usage.completionTokens
      source = 'upstream'
    } else {
      promptTokens = usage?.promptTokens ?? info.estimate.promptTokens
      // Bounded like the prompt: a long answer is counted off the event loop, or by its upper bound.
      const counted = end.text === '' ? 0 : (await this.counter.countText(info.encoding, end.text)).tokens
      // A stream cut before its final usage: the upstream's count so far, or the text, whichever is more.
      completionTokens = Math.max(usage?.completionTokens ?? 0, counted)
      source = usage ? 'upstream' : 'counted'
    }
    const nothingGenerated = !usage && completionTokens === 0
    if (end.kind === 'failed' && nothingGenerated) {
      if (this.options.onUpstreamError === 'refundAll') {
        return { ...NOTHING, source: 'none', outcome, refunded: true }
      }
      source = 'estimate'
    }
    const counts = {
      promptTokens,
      completionTokens,
      cachedTokens: usage?.cachedTokens ?? 0,
      cacheWriteTokens: usage?.cacheWriteTokens ?? 0,
      cacheWrite1hTokens: usage?.cacheWrite1hTokens ?? 0,
      reasoningTokens: usage?.reasoningTokens ?? 0,
    }
    const usd = this.options.prices.breakdown(info.model, counts)
    // Written out rather than spread: two spreads per call showed as the hottest line of settling.
    return {
      promptTokens,
      completionTokens,
      cachedTokens: counts.cachedTokens,
      cacheWriteTokens: counts.cacheWriteTokens,
      cacheWrite1hTokens: counts.cacheWrite1hTokens,
      reasoningTokens: counts.reasoningTokens,
      inputUsd: usd.inputUsd,
      cachedUsd: usd.cachedUsd,
      cacheWriteUsd: usd.cacheWriteUsd,
      outputUsd: usd.outputUsd,
      usd: usd.usd,
      tokens: promptTokens + completionTokens,
      source,
      outcome,
      refunded: false,
    }
  }
}

const NOTHING = {
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  cacheWrite1hTokens: 0,
  reasoningTokens: 0,
  tokens: 0,
  inputUsd: 0,
  cachedUsd: 0,
  cacheWriteUsd: 0,
  outputUsd: 0,
  usd: 0,
}

/** The settled costs, in the token kinds the reservation's limits count (see TOKEN_KIND_UNITS). */
function settleCosts(decision: Decision, s: Settlement): Costs {
  const costs: Costs = { tokens: s.tokens, usd: s.usd }
  for (const limit of decision.limits) {
    const unit = limit.unit as TokenKindUnit
    if (unit === 'input_tokens') costs.input_tokens = s.promptTokens - s.cachedTokens
    else if (unit === 'output_tokens') costs.output_tokens = s.completionTokens
    else if (unit === 'cached_tokens') costs.cached_tokens = s.cachedTokens
  }
  return costs
}

/**
 * A settled call's ledger row. Its optional fields are added in place, in the row's order, instead
 * of spread in (each spread built an object per call).
 */
function ledgerRecord(charge: Charge, end: CallEnd, s: Settlement): LedgerRecord {
  const { info } = charge
  const record: LedgerRecord = {
    time: isoTime(Date.now()),
    subject: info.subject,
    tier: info.tier,
    model: info.model,
    route: info.route,
    stream: info.stream,
    status: end.status,
    outcome: s.outcome,
    limited: charge.limited,
  } as LedgerRecord
  const fallback = charge.decision?.fallback
  if (fallback !== undefined) record.fallback = fallback
  const queueMs = charge.decision?.waitedMs
  if (queueMs !== undefined) record.queueMs = queueMs
  const routing = info.routing
  if (routing !== undefined) {
    record.deployment = routing.deployment.name
    if (routing.failed.length > 0) record.failedDeployments = [...routing.failed]
  }
  record.source = s.source
  record.promptTokens = s.promptTokens
  record.completionTokens = s.completionTokens
  record.cachedTokens = s.cachedTokens
  record.cacheWriteTokens = s.cacheWriteTokens
  record.cacheWrite1hTokens = s.cacheWrite1hTokens
  record.reasoningTokens = s.reasoningTokens
  record.tokens = s.tokens
  record.inputUsd = s.inputUsd
  record.cachedUsd = s.cachedUsd
  record.cacheWriteUsd = s.cacheWriteUsd
  record.outputUsd = s.outputUsd
  record.usd = s.usd
  return record
}
