/** What `sluice serve` prints once it listens: where it is, and what each model pattern reaches. */
import { adminAuthFrom } from '../control/admin/config.js'
import type { GatewayConfig } from './config/schema.js'
import { escapeControls } from './format.js'
import type { Gateway } from './index.js'
import { patternsOf, usedUpstreams } from './startup.js'
import type { Upstream } from './upstream.js'

function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url
  }
}

/** An upstream in words: where it is, and whether it has its key. */
export function describeUpstream(upstream: Upstream): string {
  if (upstream.config.type === 'mock') return `${upstream.name} (built-in mock at ${upstream.baseUrl})`
  const key = upstream.hasKey
    ? `key from $${upstream.config.apiKeyEnv}`
    : `no key: $${upstream.config.apiKeyEnv} is not set`
  return `${upstream.name} (${redactUrl(upstream.baseUrl)}, ${key})`
}

/**
 * Which upstream each model pattern goes to, as the gateway routes it: one line when every model
 * goes to one upstream, else one line per pattern and "every other model" for the default.
 */
export function routeLines(config: GatewayConfig, upstreams: ReadonlyMap<string, Upstream>): string[] {
  const used = usedUpstreams(config)
  if (used.length === 1) return [`upstream: ${describeUpstream(upstreams.get(used[0]!)!)}`]
  const lines: string[] = []
  const routed = Object.entries(config.models).filter(
    ([, m]) => m.upstream !== undefined && m.upstream !== config.defaultUpstream,
  )
  for (const [pattern, model] of routed) {
    lines.push(`${pattern} → ${describeUpstream(upstreams.get(model.upstream!)!)}`)
  }
  for (const [model, list] of Object.entries(config.deployments)) {
    const names = list.map((d) => `${d.name ?? `${d.upstream}/${d.model ?? model}`} (${d.upstream})`)
    lines.push(`${model} → deployments ${names.join(', ')}`)
  }
  const rest = patternsOf(config, config.defaultUpstream).filter(
    (p) => p !== 'every other model' && !p.endsWith(' (deployment)'),
  )
  const others = rest.length > 0 ? `${rest.join(', ')} and every other model` : 'every other model'
  lines.push(`${others} → ${describeUpstream(upstreams.get(config.defaultUpstream)!)}`)
  return [`upstreams: ${lines[0]}`, ...lines.slice(1).map((l) => `           ${l}`)]
}

/** The demo key line: how long the key lives depends on where it came from. */
function demoKeyLine(gateway: Gateway): string | undefined {
  if (gateway.demoKey === undefined) return undefined
  return gateway.demoKeyFromEnv
    ? `demo key: ${gateway.demoKey}  (service tier; from SLUICE_DEMO_KEY: valid until you change it — keep it secret)`
    : `demo key: ${gateway.demoKey}  (service tier; valid while this process runs)`
}

/** The lines `sluice serve` prints at start-up (control characters in names escaped). */
export function bannerLines(
  gateway: Gateway,
  options: { configPath: string | undefined; store: string; env?: Record<string, string | undefined> },
): string[] {
  const { config } = gateway
  const lines = [
    `sluice gateway listening on ${gateway.url} — OpenAI base URL: ${gateway.url}/v1`,
    `  config:   ${options.configPath ?? '(defaults)'}`,
    `  store:    ${options.store}`,
    ...routeLines(config, gateway.upstreams).map((l) => `  ${l}`),
    `  ledger:   ${config.ledger.path === false ? 'off' : `${config.ledger.path} (on failure: ${config.ledger.onFailure})`}`,
  ]
  if (gateway.control !== undefined) {
    const { control } = gateway.control
    lines.push(`  database: ${control.label} (keys, teams, budgets, a ledger row per request)`)
    const on = adminAuthFrom(options.env ?? {}, config.admin) !== undefined
    lines.push(
      on
        ? `  admin:    ${gateway.url}/admin/v1 · dashboard ${gateway.url}/dashboard/`
        : '  admin:    off (set SLUICE_ADMIN_TOKEN, or admin.tokenHash in sluice.yaml, for /admin/v1 and /dashboard)',
    )
  }
  if (config.metrics.enabled) lines.push(`  metrics:  ${gateway.url}/metrics`)
  const demo = demoKeyLine(gateway)
  if (demo !== undefined) lines.push(`  ${demo}`)
  for (const warning of gateway.warnings) lines.push(`  warning:  ${warning}`)
  lines.push(
    `try: curl ${gateway.url}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'`,
  )
  return lines.map((l) => escapeControls(l))
}
