/** OpenAI-shaped errors for what the gateway itself refuses (bad input, unknown routes, upstream trouble). */
export interface GatewayErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

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

  get body(): GatewayErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

export function invalidRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): GatewayError {
  return new GatewayError(400, message, 'invalid_request_error', param, code)
}
