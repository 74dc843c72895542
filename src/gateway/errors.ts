import type { ErrorInfo } from './dialects/types.js'

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
