import { z } from 'zod'
import { duration, positive, positiveInt } from './primitives.js'

/**
 * A deployment: one place a model is served (an upstream and the provider's name for the model),
 * with the provider account's own limits. Several deployments of a model share its traffic by
 * weight, among those with room (docs/gateway.md#deployments).
 */
export const deploymentSchema = z.strictObject({
  /** Names the deployment in metrics, logs and the ledger (default: `<upstream>/<model>`). */
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.:@/+=-]{1,64}$/, 'expected 1-64 letters, digits or "_.:@/+=-"')
    .optional(),
  upstream: z.string().min(1),
  /** The provider's name for the model (an Azure deployment name, a vLLM served model); default: the name clients send. */
  model: z.string().min(1).optional(),
  /** Share of the traffic among the deployments with room (default 1). */
  weight: positive.default(1),
  /** The provider account's limits for this deployment; none: only what the provider reports. */
  limits: z
    .strictObject({
      /** Requests per window (the provider's RPM with the default window of 1m). */
      requests: positiveInt.optional(),
      /** Tokens (prompt + completion) per window (the provider's TPM with the default window). */
      tokens: positiveInt.optional(),
      /** USD per UTC day spent on this deployment. */
      usdPerDay: positive.optional(),
      /** The window of `requests` and `tokens`: exact (a sliding log), default 1m. */
      window: duration.default(60_000),
    })
    .default({ window: 60_000 }),
})
export type DeploymentConfig = z.output<typeof deploymentSchema>

/** Model name (as clients send it, exact) → its deployments. */
export const deploymentsSchema = z
  .record(z.string().min(1), z.array(deploymentSchema).min(1, 'a model needs at least one deployment'))
  .default({})

/** Model name → the model whose deployments take a call when every deployment of the first failed or is full. */
export const fallbacksSchema = z.record(z.string().min(1), z.string().min(1)).default({})

/** The deployment's name: the one given, or `<upstream>/<model>`. */
export function deploymentName(model: string, d: DeploymentConfig): string {
  return d.name ?? `${d.upstream}/${d.model ?? model}`
}

/** What the schema cannot check: upstreams that exist, names used once, fallbacks that lead somewhere. */
export function deploymentIssues(config: {
  upstreams: Record<string, unknown>
  deployments: Record<string, DeploymentConfig[]>
  fallbacks: Record<string, string>
  store?: { type: string; nodes?: unknown }
}): string[] {
  const issues: string[] = []
  if (
    config.store?.type === 'redis' &&
    config.store.nodes !== undefined &&
    Object.keys(config.deployments).length > 0
  ) {
    issues.push(
      'deployments: need one Redis (store.url), not a Redis Cluster: a deployment is decided in one atomic step with every tenant that uses it, so their keys cannot share one slot',
    )
  }
  const have = Object.keys(config.upstreams).join(', ')
  const names = new Map<string, string>()
  for (const [model, list] of Object.entries(config.deployments)) {
    list.forEach((d, i) => {
      const path = `deployments.${model}.${i}`
      if (!(d.upstream in config.upstreams)) {
        issues.push(`${path}.upstream: no upstream named "${d.upstream}" (have: ${have})`)
      }
      const name = deploymentName(model, d)
      const before = names.get(name)
      if (before !== undefined) {
        issues.push(`${path}.name: "${name}" already names ${before}; give each deployment its own name`)
      }
      names.set(name, path)
    })
  }
  for (const [model, target] of Object.entries(config.fallbacks)) {
    if (target === model) issues.push(`fallbacks.${model}: a model cannot fall back to itself`)
    else if (config.deployments[model] === undefined) {
      issues.push(
        `fallbacks.${model}: "${model}" has no deployments (fallbacks apply to models listed under deployments)`,
      )
    }
  }
  return issues
}
