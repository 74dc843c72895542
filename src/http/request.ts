/** Request headers as Node (`IncomingHttpHeaders`, lower-case names) or Fetch (`Headers`) has them. */
export type HeaderBag =
  | Record<string, string | string[] | undefined>
  | { get(name: string): string | null | undefined }

/**
 * What the HTTP layer needs to know about a request, whatever the framework. Adapters build it;
 * the gateway can build it from its own request.
 */
export interface RequestLike {
  method: string
  url: string
  headers: HeaderBag
  /** The socket peer's address (not a forwarded one). */
  remoteAddress: string | undefined
}

/** One header's value (several lines joined with ", "); `name` must be lower-case. */
export function headerOf(headers: HeaderBag, name: string): string | undefined {
  const get = (headers as { get?: unknown }).get
  if (typeof get === 'function') {
    return (headers as { get(name: string): string | null | undefined }).get(name) ?? undefined
  }
  const value = (headers as Record<string, string | string[] | undefined>)[name]
  if (value === undefined) return undefined
  return typeof value === 'string' ? value : value.join(', ')
}
