/** Per-deployment counters on /metrics: what each provider account took, refused and had left. */
import { Counter, Gauge, type Registry } from 'prom-client'

export class DeploymentMetrics {
  readonly requests: Counter<'deployment' | 'status'>
  readonly tokens: Counter<'deployment'>
  readonly refusals: Counter<'deployment' | 'status'>
  readonly cooldowns: Counter<'deployment'>
  readonly fallbacks: Counter<'from' | 'to'>
  readonly full: Counter<'deployment'>
  readonly headroom: Gauge<'deployment' | 'unit'>

  constructor(registry: Registry) {
    const registers = [registry]
    this.requests = new Counter({
      name: 'sluice_deployment_requests_total',
      help: 'Calls sent to each deployment, by the status it answered (0: no answer).',
      labelNames: ['deployment', 'status'],
      registers,
    })
    this.tokens = new Counter({
      name: 'sluice_deployment_tokens_total',
      help: 'Tokens (prompt + completion) settled on each deployment.',
      labelNames: ['deployment'],
      registers,
    })
    this.refusals = new Counter({
      name: 'sluice_deployment_upstream_429_total',
      help: "Refusals received from each deployment's provider (429, and 503/529 overloaded), by status.",
      labelNames: ['deployment', 'status'],
      registers,
    })
    this.cooldowns = new Counter({
      name: 'sluice_deployment_cooldowns_total',
      help: 'Cool-downs started on each deployment after its provider refused a call.',
      labelNames: ['deployment'],
      registers,
    })
    this.fallbacks = new Counter({
      name: 'sluice_deployment_fallbacks_total',
      help: 'Calls moved from a deployment that failed before any output to another one.',
      labelNames: ['from', 'to'],
      registers,
    })
    this.full = new Counter({
      name: 'sluice_deployment_full_total',
      help: "Admissions a deployment's limits refused (the call tried the next deployment).",
      labelNames: ['deployment'],
      registers,
    })
    this.headroom = new Gauge({
      name: 'sluice_deployment_headroom',
      help: "What each deployment's provider last reported left, by unit (requests, tokens).",
      labelNames: ['deployment', 'unit'],
      registers,
    })
  }
}
