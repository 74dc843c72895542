/**
 * The dashboard's only way out: calls to /admin/v1 on this origin, with the admin token in the
 * Authorization header. A 401 signs the tab out. Errors carry the API's code and the field it names.
 */
import { signOut, token } from './session'
import type { Query } from './types'

/** /admin/v1/, found from the page's own address (/dashboard/ → /admin/v1/), so that a prefix works. */
export const API_BASE = new URL('../admin/v1/', window.location.href)

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null,
    readonly param: string | null,
    readonly retryAfterMs: number | null,
  ) {
    super(message)
  }
}

export function apiUrl(path: string, query?: Query): URL {
  const url = new URL(path.replace(/^\//, ''), API_BASE)
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === '') continue
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(v))
  }
  return url
}

interface CallOptions {
  query?: Query
  body?: unknown
  signal?: AbortSignal
  /** A token to try instead of the session's (sign-in). */
  bearer?: string
}

export async function call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
  const bearer = options.bearer ?? token()
  const headers: Record<string, string> = { accept: 'application/json' }
  if (bearer) headers.authorization = `Bearer ${bearer}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  let response: Response
  try {
    response = await fetch(apiUrl(path, options.query), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    })
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error
    throw new ApiError('The server did not answer. Is it running?', 0, 'network_error', null, null)
  }
  const text = await response.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  if (response.ok) return json as T
  const error = (json as { error?: { message?: string; code?: string; param?: string } } | undefined)?.error
  const retry = response.headers.get('retry-after-ms') ?? response.headers.get('retry-after')
  const retryAfterMs =
    retry === null ? null : response.headers.has('retry-after-ms') ? Number(retry) : Number(retry) * 1000
  const failure = new ApiError(
    error?.message ?? `HTTP ${response.status}`,
    response.status,
    error?.code ?? null,
    error?.param ?? null,
    retryAfterMs,
  )
  // The session's token no longer works (changed on the server): back to the sign-in page.
  if (response.status === 401 && options.bearer === undefined && bearer) {
    signOut('The admin token was refused: sign in again.')
  }
  throw failure
}

export const get = <T>(path: string, query?: Query, signal?: AbortSignal) =>
  call<T>('GET', path, { query, signal })
export const post = <T>(path: string, body?: unknown) => call<T>('POST', path, { body })
export const patch = <T>(path: string, body: unknown) => call<T>('PATCH', path, { body })
export const del = <T>(path: string, query?: Query) => call<T>('DELETE', path, { query })

/** A path segment, encoded (subjects hold `:`, user ids anything). */
export const seg = (value: string) => encodeURIComponent(value)
