/**
 * A proxied call on a /v1 route, once its caller is identified: validate the body, estimate its
 * tokens (bounded), admit it through the HTTP layer's admit() (reserve, graduated response,
 * headers or refusal), forward it upstream, and settle the reservation with what it really cost.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Admission } from '../../http/index.js'
import { PRIORITY_HEADER, readPriority } from '../../http/priority.js'
import type { Decision, Limiter } from '../../limiter.js'
import type { ChargeInfo } from '../accounting.js'
import { exceedsCapacity, tokenCapacity } from '../admission.js'
import { lowerBound } from '../counting.js'
import type { Dialect, DialectRoute, Estimate, ValidRequest } from '../dialects/types.js'
import { invalidRequest, wrongDialect } from '../errors.js'
import { type ProxyCall, proxyCall } from '../proxy.js'
import type { PromptParts } from '../tokens.js'
import { traceOf } from '../trace.js'
import { admitOptions, clientGone } from './client-gone.js'
import { admissionHeaders, type Gate } from './context.js'
import { type DeployedCall, routeCall } from './deployed.js'
import { sendAdmission } from './identify.js'

/** The handler of a /v1 route: serves the call, counted in flight until it ends. */
export function handleCall(
  gate: Gate,
  request: FastifyRequest,
  reply: FastifyReply,
  dialect: Dialect,
  api: DialectRoute,
): Promise<unknown> {
  const tier = gate.identities.get(request)!.identity!.tier
  const done = gate.metrics.trackInFlight(tier)
  return gate.calls.track(serveCall(gate, request, reply, dialect, api)).finally(done)
}

async function serveCall(
  gate: Gate,
  request: FastifyRequest,
  reply: FastifyReply,
  dialect: Dialect,
  api: DialectRoute,
) {
  const { sluice, accounting, models, upstreams } = gate
  const id = gate.identities.get(request)!
  const identity = id.identity!
  const valid = dialect.validate(api.kind, request.body)
  const route = models.route(valid.model)
  const limiter = id.allowListed ? undefined : sluice.limiterFor(identity)
  const deployed = gate.deployments?.of(valid.model)
  let upstream = upstreams.get(deployed?.[0]?.upstream ?? route.upstream)!
  if (!upstream.speaks(dialect)) {
    const speaking = deployed?.find((d) => upstreams.get(d.upstream)!.speaks(dialect))
    if (speaking === undefined) throw wrongDialect(valid.model, upstream, dialect)
    upstream = upstreams.get(speaking.upstream)!
  }
  const parts = dialect.promptParts(valid)
  const { estimate, oversized } = await estimateCall(gate, dialect, valid, parts, route, limiter)
  const read = readPriority(
    request.headers[PRIORITY_HEADER],
    limiter !== undefined && sluice.allowsPriority(identity),
  )
  if (read.error !== undefined) throw invalidRequest(read.error, PRIORITY_HEADER, 'invalid_priority')
  const priority = read.priority

  let admission: Admission | undefined
  let headers: Record<string, string> = {}
  if (limiter !== undefined && sluice.detectors !== undefined) {
    // A MemoryStore answers at once: taken as it is, with no promise and no turn to wait.
    // The prompt a loop is judged by: `${model}\n` and the prompt parts the token estimate read,
    // each after a newline — given as parts, not joined (the fingerprint reads them in turn).
    const checked = sluice.detectors.checkNow(identity, valid.model, parts.texts)
    const refusal = checked instanceof Promise ? await checked : checked
    if (refusal !== undefined) {
      return reply.code(refusal.status).headers(refusal.headers).send(refusal.body)
    }
  }
  let routed: DeployedCall | undefined
  if (deployed !== undefined) {
    const escalate = oversized && limiter ? () => strike(gate, limiter, identity.subject) : undefined
    const outcome = await routeCall(gate, request, reply, dialect, valid, estimate, limiter, {
      escalate,
      priority,
      signal: clientGone(reply),
    })
    if (outcome === undefined) return reply
    routed = outcome
    admission = outcome.admission
    if (admission !== undefined) headers = admissionHeaders(admission)
    upstream = upstreams.get(outcome.routing.deployment.upstream)!
  } else if (limiter !== undefined) {
    // Sent again and again, an oversized body is abuse: its denial counts toward a block.
    const escalate = oversized ? () => strike(gate, limiter, identity.subject) : undefined
    admission = await sluice.admit(
      identity,
      accounting.reservationCosts(valid.model, estimate, limiter),
      admitOptions(reply, escalate, priority),
    )
    if (!admission.proceed) return sendAdmission(request, reply, admission)
    headers = admissionHeaders(admission)
  }
  const info: ChargeInfo = {
    subject: identity.subject,
    tier: identity.tier,
    model: valid.model || '-',
    route: api.kind,
    stream: valid.stream,
    estimate,
    encoding: route.encoding,
    trace: traceOf(request),
  }
  // Set in place rather than spread in: a spread makes the literal a copy on every call.
  if (routed !== undefined) info.routing = routed.routing
  const charge = accounting.track(admission?.state.reservation, info)

  const { body, stripUsage } = dialect.upstreamBody(valid, upstream)
  const bodyFor = (model: string | undefined) =>
    api.method === 'GET'
      ? undefined
      : JSON.stringify(model === undefined || model === valid.model ? body : { ...body, model })
  const path =
    typeof api.upstreamPath === 'string'
      ? api.upstreamPath
      : api.upstreamPath(request.params as Record<string, string>)
  info.trace!.upstreamAt = performance.now()
  const call: ProxyCall = {
    reply,
    log: request.log,
    upstream,
    dialect,
    request: valid,
    method: api.method,
    path,
    body: bodyFor(routed?.routing.deployment.providerModel),
    stream: valid.stream,
    stripUsage,
    clientHeaders: request.headers,
    headers,
    charge,
  }
  if (routed !== undefined) call.onAnswer = routed.onAnswer(bodyFor)
  try {
    await proxyCall(call)
  } finally {
    // Whatever went wrong, the reservation is settled (charging the prompt) and never leaks.
    if (!charge.finished) {
      await charge.finish({ kind: 'failed', status: 500, text: '', outcome: 'upstream_error' })
    }
  }
  return reply
}

/**
 * The call's token estimate from its prompt `parts`. A prompt whose fewest possible tokens cannot fit the tier is not
 * counted (`oversized`): the reservation of that bound is denied by the store, like any request
 * too large for a limit.
 */
async function estimateCall(
  gate: Gate,
  dialect: Dialect,
  valid: ValidRequest,
  parts: PromptParts,
  route: ReturnType<Gate['models']['route']>,
  limiter: Limiter | undefined,
): Promise<{ estimate: Estimate; oversized: boolean }> {
  const outputTokens = dialect.outputTokens(valid, route.defaultOutputTokens)
  const estimate: Estimate = { promptTokens: lowerBound(parts), outputTokens }
  const oversized =
    limiter !== undefined && exceedsCapacity(limiter, gate.accounting.reservationCosts(valid.model, estimate))
  if (oversized) return { estimate, oversized }
  const counted = await gate.counter.count(route.encoding, parts)
  let promptTokens = counted.tokens
  // Too large to count in time: the upper bound, but never above what the tier can hold, so
  // that a prompt which may fit is not refused on an overestimate (settling corrects it).
  if (!counted.exact && limiter !== undefined) {
    promptTokens = Math.max(
      estimate.promptTokens,
      Math.min(promptTokens, tokenCapacity(limiter) - outputTokens),
    )
  }
  return { estimate: { promptTokens, outputTokens }, oversized }
}

/**
 * Counts a strike toward the subject's block for a request larger than a limit can ever hold; the
 * strike's decision replaces the denial when it started a block. Best effort: a store that cannot
 * take the strike now must not turn the 429 into a 503.
 */
async function strike(gate: Gate, limiter: Limiter, subject: string): Promise<Decision | undefined> {
  const decision = await gate.strikes.strike(limiter, subject).catch(() => undefined)
  return decision?.blocked ? decision : undefined
}
