/**
 * A call for a model with deployments: admitted on a deployment with room together with its
 * tenant (deployments/routing.ts), every provider answer read for headroom and refusals (shared
 * on the board), moved once to another deployment when the first fails before any output, and a
 * 429 (503) of the service's capacity when no deployment has room.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Admission } from '../../http/index.js'
import type { Decision, Limiter } from '../../limiter.js'
import type { Priority } from '../../waiting.js'
import { boardUpdateOf, isEmptyUpdate, isRefusal, readHeadroom } from '../deployments/headroom.js'
import type { Deployment } from '../deployments/router.js'
import { admitRouted, moveRouted, type Routing } from '../deployments/routing.js'
import type { Dialect, Estimate, ValidRequest } from '../dialects/types.js'
import type { UpstreamAnswer, UpstreamTarget } from '../proxy.js'
import type { Gate } from './context.js'
import { sendAdmission } from './identify.js'

export interface DeployedCall {
  /** The tenant's admission (undefined: not limited). */
  admission: Admission | undefined
  routing: Routing
  /** proxyCall's onAnswer: reads each answer, and moves the call once when it failed before any output. */
  onAnswer(
    bodyFor: (model: string) => string | undefined,
  ): (answer: UpstreamAnswer) => Promise<UpstreamTarget | undefined>
}

/** Admits the call on a deployment; undefined when it was answered here (refused, or no room). */
export async function routeCall(
  gate: Gate,
  request: FastifyRequest,
  reply: FastifyReply,
  dialect: Dialect,
  valid: ValidRequest,
  estimate: Estimate,
  limiter: Limiter | undefined,
  options: {
    escalate: ((decision: Decision) => Promise<Decision | undefined>) | undefined
    priority: Priority | undefined
    signal: AbortSignal
  },
): Promise<DeployedCall | undefined> {
  const deployments = gate.deployments!
  const identity = gate.identities.get(request)!.identity!
  const usable = (d: Deployment) => gate.upstreams.get(d.upstream)?.speaks(dialect) === true
  const costs = gate.accounting.reservationCosts(valid.model, estimate, limiter)
  const outcome = await admitRouted({
    sluice: gate.sluice,
    deployments,
    identity,
    limiter,
    model: valid.model,
    costs,
    usable,
    ...options,
  })
  const metrics = gate.deploymentMetrics
  if (outcome.kind === 'refused') {
    await sendAdmission(request, reply, outcome.admission)
    return undefined
  }
  if (outcome.kind === 'full') {
    for (const name of outcome.tried) metrics?.full.inc({ deployment: name })
    await sendCapacity(reply, valid.model, outcome.retryAfterMs, outcome.outage)
    return undefined
  }
  const routing = outcome.routing
  const store = limiter?.store ?? gate.sluice.tierLimiter(identity.tier).store
  let moved = false
  return {
    admission: outcome.admission,
    routing,
    onAnswer: (bodyFor) => async (answer) => {
      const d = routing.deployment
      // Written before the answer goes on: a client that saw it finds every instance knowing it.
      await observe(gate, d.name, answer)
      const failedEarly = answer.failure !== undefined || answer.status === 429 || answer.status >= 500
      if (!failedEarly || moved) return undefined
      moved = true
      if (!(await moveRouted(deployments, routing, store, costs, usable))) return undefined
      const next = routing.deployment
      metrics?.fallbacks.inc({ from: d.name, to: next.name })
      request.log.warn(
        { from: d.name, to: next.name, status: answer.status },
        `deployment "${d.name}" failed before answering (${answer.failure?.code ?? answer.status}): the call moves to "${next.name}"`,
      )
      return { upstream: gate.upstreams.get(next.upstream)!, body: bodyFor(next.providerModel) }
    },
  }
}

/** Counts an answer and writes what its headers say of the provider account on the board. */
async function observe(gate: Gate, name: string, answer: UpstreamAnswer): Promise<void> {
  const metrics = gate.deploymentMetrics
  metrics?.requests.inc({ deployment: name, status: String(answer.failure ? 0 : answer.status) })
  if (answer.headers === undefined) return
  const headroom = readHeadroom(answer.headers, Date.now())
  if (headroom.remainingRequests !== undefined) {
    metrics?.headroom.set({ deployment: name, unit: 'requests' }, headroom.remainingRequests)
  }
  if (headroom.remainingTokens !== undefined) {
    metrics?.headroom.set({ deployment: name, unit: 'tokens' }, headroom.remainingTokens)
  }
  const update = boardUpdateOf(answer.status, headroom)
  if (isRefusal(answer.status)) {
    metrics?.refusals.inc({ deployment: name, status: String(answer.status) })
    metrics?.cooldowns.inc({ deployment: name })
    gate.logger.warn(
      { deployment: name, status: answer.status, coolMs: update.coolMs },
      `deployment "${name}" refused a call (${answer.status}): cooling down for ${update.coolMs}ms on every instance`,
    )
  }
  if (isEmptyUpdate(update)) return
  await gate.deployments!.board.write(name, update).catch((error: unknown) => {
    gate.logger.warn({ err: error, deployment: name }, "could not write a deployment's headroom to the store")
  })
}

/** No deployment has room: the service's capacity, not the client's quota. */
async function sendCapacity(reply: FastifyReply, model: string, retryAfterMs: number, outage: boolean) {
  const never = !Number.isFinite(retryAfterMs)
  const status = outage ? 503 : 429
  const seconds = never ? 0 : Math.max(1, Math.ceil(retryAfterMs / 1000))
  const headers: Record<string, string> = { 'x-should-retry': never ? 'false' : 'true' }
  if (!never) {
    headers['retry-after'] = String(seconds)
    headers['retry-after-ms'] = String(Math.max(1, Math.ceil(retryAfterMs)))
  }
  const why = never
    ? `no deployment of ${model} can ever take a call this large`
    : outage
      ? `every deployment of ${model} is unavailable (retry in ${seconds}s)`
      : `every deployment of ${model} is full (retry in ${seconds}s)`
  await reply
    .code(status)
    .headers(headers)
    .send({
      error: {
        message: `The service is at capacity: ${why}. This is the service's capacity, not your quota.`,
        type: 'service_capacity',
        param: null,
        code: outage ? 'service_unavailable' : 'capacity_exceeded',
      },
    })
}
