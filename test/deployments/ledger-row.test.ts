import { describe, expect, it } from 'vitest'
import { Accounting } from '../../src/gateway/accounting.js'
import { settledRow } from '../../src/gateway/control-plane.js'
import { PriceTable } from '../../src/gateway/prices.js'

describe("a routed call's database ledger row", () => {
  it('names the deployment that served, its upstream, and the deployments it moved from', async () => {
    const accounting = new Accounting({
      prices: new PriceTable({}),
      ledger: undefined,
      onUpstreamError: 'chargePrompt',
    })
    const settled: unknown[] = []
    const routing = {
      deployment: { name: 'dep-b', upstream: 'b' },
      failed: ['dep-a'],
      settle: async (_tenant: unknown, costs: unknown) => {
        settled.push(costs)
      },
    }
    const charge = accounting.track(undefined, {
      subject: 'ip:1',
      tier: 'anonymous',
      model: 'm',
      route: 'chat',
      stream: false,
      estimate: { promptTokens: 5, outputTokens: 10 },
      encoding: 'o200k_base',
      routing,
    })
    const settlement = await charge.finish({
      kind: 'answered',
      status: 200,
      usage: { promptTokens: 5, completionTokens: 7 },
      text: '',
    })
    // Not limited itself: the deployment is still settled with what the call used.
    expect(settled).toEqual([{ tokens: 12, usd: settlement.usd }])
    const row = settledRow(charge, settlement, 200)
    expect(row).toMatchObject({ deployment: 'dep-b', upstream: 'b', reason: 'moved from dep-a', tokens: 12 })
  })
})
