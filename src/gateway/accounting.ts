import type { Decision, Reservation } from '../limiter.js'
import type { EncodingName } from './config/schema.js'
import { sharedCounter, type TokenCounter } from './counting.js'
import type { Ledger, LedgerRecord } from './ledger.js'
import type { PriceTable } from './prices.js'
import type { Estimate } from './requests.js'
import type { RequestTrace } from './trace.js'
import type { ReportedUsage, RouteKind } from './usage.js'

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

/** What a call is charged once it ended. */
export interface Settlement {
  promptTokens: number
  completionTokens: number
  tokens: number
  usd: number
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
    return Number(this.options.prices.cost(model, { promptTokens, completionTokens }).toPrecision(12))
  }

  /** What to reserve for a call: one request, the estimated tokens and their price. */
  reservationCosts(model: string, estimate: Estimate): { requests: number; tokens: number; usd: number } {
    return {
      requests: 1,
      tokens: estimate.promptTokens + estimate.outputTokens,
      usd: this.cost(model, estimate.promptTokens, estimate.outputTokens),
    }
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
      if (charge.reservation?.allowed) {
        if (settlement.refunded) await charge.reservation.cancel()
        else await charge.reservation.settle({ tokens: settlement.tokens, usd: settlement.usd })
      }
    } catch (error) {
      this.options.onSettleError?.(error, charge)
    } finally {
      this.open.delete(charge)
    }
    const fallback = charge.decision?.fallback
    this.options.ledger?.append({
      time: new Date().toISOString(),
      subject: info.subject,
      tier: info.tier,
      model: info.model,
      route: info.route,
      stream: info.stream,
      status: end.status,
      outcome: settlement.outcome,
      limited: charge.limited,
      ...(fallback !== undefined && { fallback }),
      source: settlement.source,
      promptTokens: settlement.promptTokens,
      completionTokens: settlement.completionTokens,
      tokens: settlement.tokens,
      usd: settlement.usd,
    })
    this.options.onSettled?.(charge, settlement, end)
    return settlement
  }

  private async price(info: ChargeInfo, end: CallEnd): Promise<Settlement> {
    const outcome = end.kind === 'answered' ? 'ok' : end.kind === 'aborted' ? 'aborted' : end.outcome
    let promptTokens: number
    let completionTokens: number
    let source: Settlement['source']
    if (end.usage) {
      promptTokens = end.usage.promptTokens
      completionTokens = end.usage.completionTokens
      source = 'upstream'
    } else {
      promptTokens = info.estimate.promptTokens
      // Bounded like the prompt: a long answer is counted off the event loop, or by its upper bound.
      completionTokens = end.text === '' ? 0 : (await this.counter.countText(info.encoding, end.text)).tokens
      source = 'counted'
    }
    const nothingGenerated = !end.usage && completionTokens === 0
    if (end.kind === 'failed' && nothingGenerated) {
      if (this.options.onUpstreamError === 'refundAll') {
        return {
          promptTokens: 0,
          completionTokens: 0,
          tokens: 0,
          usd: 0,
          source: 'none',
          outcome,
          refunded: true,
        }
      }
      source = 'estimate'
    }
    const usd = this.cost(info.model, promptTokens, completionTokens)
    return {
      promptTokens,
      completionTokens,
      tokens: promptTokens + completionTokens,
      usd,
      source,
      outcome,
      refunded: false,
    }
  }
}
