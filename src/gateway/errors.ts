import type { Dialect, ErrorInfo } from './dialects/types.js'

/**
 * An error the gateway answers itself (bad input, unknown routes, upstream trouble). It carries what
 * went wrong; the request's dialect gives the body its shape (dialects/*: errorBody).
 */
export class GatewayError extends Error {
  override name = 'GatewayError'
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message)
  }

  /** The body in the gateway's own (OpenAI) shape; dialects/shape.ts reshapes it for other dialects. */
  get body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }

  get info(): ErrorInfo {
    return { status: this.status, message: this.message, type: this.type, param: this.param, code: this.code }
  }
}

export function invalidRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): GatewayError {
  return new GatewayError(400, message, 'invalid_request_error', param, code)
}

/** A model routed to an upstream that does not speak the API the client called. */
export function wrongDialect(model: string, upstream: { name: string }, dialect: Dialect): GatewayError {
  return invalidRequest(
    `The model '${model}' is served by the upstream "${upstream.name}", which does not speak the ${dialect.name} API this route belongs to. Route the model to an upstream of that type under models: in sluice.yaml.`,
    'model',
    'model_not_supported',
  )
}
