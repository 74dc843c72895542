/**
 * sluice as Express middleware:
 *
 * ```ts
 * app.use(sluice())                           // or sluice({ store, tiers, keys, authenticate, … })
 * app.get('/', (req, res) => res.json({ level: req.sluice?.level }))
 * ```
 *
 * Identity uses the socket address and sluice's own `trustProxy`, not Express's `trust proxy`.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { checkThen, coreFrom, firstCheck, type SluiceInput } from './adapter.js'
import type { Sluice } from './core.js'
import type { CostSpec } from './options.js'
import { remoteAddressOf } from './socket-address.js'
import { type RateLimitState, releaseState } from './state.js'

declare global {
  namespace Express {
    interface Request {
      /** What sluice decided about this request (set by sluice/express). */
      sluice?: RateLimitState
    }
  }
}

export interface ExpressLimit extends RequestHandler {
  /** The same middleware with another cost, for one route: `app.post('/x', limit.withCost(5), h)`. */
  withCost(cost: CostSpec<Request>): ExpressLimit
  readonly core: Sluice<Request>
}

function make(core: Sluice<Request>, cost: CostSpec<Request> | undefined): ExpressLimit {
  const middleware = ((req: Request, res: Response, next: NextFunction) => {
    // Mounted twice (globally and on a route): the first check counts, the second passes.
    if (!firstCheck(core, req)) return next()
    checkThen(
      core,
      {
        method: req.method,
        url: req.originalUrl,
        headers: req.headers,
        remoteAddress: remoteAddressOf(req.socket),
      },
      req,
      cost,
      (result) => {
        const state = result.state
        req.sluice = state
        res.locals.sluice = state
        const headers = result.headers
        for (const name in headers) res.setHeader(name, headers[name]!)
        if (!result.proceed) {
          res.status(result.status).json(result.body)
          return
        }
        if (state.holdsLease) res.once('close', () => void releaseState(state))
        next()
      },
      next,
    )
  }) as ExpressLimit
  middleware.withCost = (c: CostSpec<Request>) => make(core, core.routeCost(c, 'withCost(cost)'))
  Object.defineProperty(middleware, 'core', { value: core, enumerable: true })
  return middleware
}

/** Makes the middleware. With no options: memory store, default tiers, identity by IP. */
export function sluice(options?: SluiceInput<Request>): ExpressLimit {
  return make(coreFrom(options), undefined)
}

export default sluice
