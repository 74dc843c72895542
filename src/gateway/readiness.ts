import type { Ledger } from './ledger.js'
import type { GatewayStore, Readiness } from './store.js'

export type LedgerFailurePolicy = 'serve' | 'refuse'

/** What /readyz says of the ledger (undefined when it is off). */
function ledgerState(ledger: Ledger): Record<string, unknown> {
  const h = ledger.health()
  const out: Record<string, unknown> = {
    state: h.state,
    since: new Date(h.since).toISOString(),
    buffered: h.buffered,
    dropped: h.dropped,
  }
  if (h.state === 'failing' && h.lastError !== undefined) out.lastError = h.lastError
  return out
}

/**
 * /readyz over the store and the ledger. While the ledger cannot write, the instance is
 * "degraded" (still serving, records buffered) when `onFailure` is serve, and "unavailable" (503,
 * calls refused) when it is refuse. A store that cannot serve wins over either.
 */
export function readinessWithLedger(
  store: GatewayStore,
  ledger: Ledger | undefined,
  onFailure: LedgerFailurePolicy,
): () => Promise<Readiness> {
  if (ledger === undefined) return () => store.readiness()
  return async () => {
    const readiness = await store.readiness()
    const body: Record<string, unknown> = { ...readiness.body, ledger: ledgerState(ledger) }
    if (ledger.health().state === 'ok') return { ready: readiness.ready, body }
    if (onFailure === 'refuse') return { ready: false, body: { ...body, status: 'unavailable' } }
    return { ready: readiness.ready, body: { ...body, status: readiness.ready ? 'degraded' : body.status } }
  }
}

/** Whether calls must be refused now because the ledger cannot record them. */
export function refusesCalls(ledger: Ledger | undefined, onFailure: LedgerFailurePolicy): boolean {
  return onFailure === 'refuse' && ledger !== undefined && ledger.failing
}

/** The 503 a call gets while the ledger cannot record it and `ledger.onFailure` is refuse. */
export const LEDGER_UNAVAILABLE_BODY = {
  error: {
    message:
      'The gateway cannot record usage right now (its usage ledger cannot be written), so it takes no calls. Please retry shortly.',
    type: 'server_error',
    param: null,
    code: 'ledger_unavailable',
  },
} as const
