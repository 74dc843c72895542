/**
 * The `gateway` rows' gateway config (startGateway's input) in front of an upstream at
 * `upstreamUrl`: the service tier (per API key) with its request, token and burst limits raised
 * so that nothing is denied (its in-flight limit, 100, stays above the benches' 16 in flight), the
 * ledger on at `ledgerPath`, warnings only in the log.
 */
export function benchGatewayConfig(upstreamUrl: string, ledgerPath: string): Record<string, unknown> {
  const huge = {
    hourly: { kind: 'slidingWindow', limit: 1e9, window: '1h' },
    tokens: { kind: 'tokenBucket', unit: 'tokens', capacity: 1e12, refillPerSecond: 1 },
    burst: { kind: 'tokenBucket', capacity: 1e9, refillPerSecond: 1 },
  }
  return {
    host: '127.0.0.1',
    port: 0,
    store: { type: 'memory' },
    tiers: { service: { limits: huge } },
    upstreams: { bench: { type: 'openai', baseUrl: upstreamUrl, apiKeyEnv: 'BENCH_UPSTREAM_KEY' } },
    defaultUpstream: 'bench',
    ledger: { path: ledgerPath },
    log: { level: 'warn' },
  }
}

/** startGateway's options for the bench's key (the demo key, service tier). */
export function benchGatewayEnv(apiKey: string): Record<string, string> {
  return { SLUICE_DEMO_KEY: apiKey, BENCH_UPSTREAM_KEY: 'unused' }
}

/** The benches' call: one short chat completion with `apiKey` (by default the same prompt every time). */
export function benchChatCall(apiKey: string, content = 'Say hello in five words.') {
  return {
    method: 'POST' as const,
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content }],
      max_tokens: 16,
    }),
  }
}
