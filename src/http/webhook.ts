import { describe, SluiceInputError } from '../core/errors.js'

export interface WebhookOptions {
  /** An http(s) URL that receives each event as a JSON POST. */
  url: string
  /** Per attempt (default 5000 ms). */
  timeoutMs?: number
  /** Further attempts after a network error, a timeout or a 5xx/429 answer (default 3). */
  retries?: number
  /** Wait before the first retry, doubled each time (default 500 ms). */
  backoffMs?: number
  /** Extra request headers, e.g. an Authorization for the receiver. */
  headers?: Record<string, string>
  /** Which events to send (default ["alert", "detection"]). */
  events?: readonly ('alert' | 'block' | 'detection')[]
}

export interface ResolvedWebhook {
  url: string
  timeoutMs: number
  retries: number
  backoffMs: number
  headers: Record<string, string>
  events: ReadonlySet<'alert' | 'block' | 'detection'>
}

function whole(value: unknown, fallback: number, min: number, what: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new SluiceInputError(`${what} must be a whole number ≥ ${min}, got ${describe(value)}`)
  }
  return value
}

export function resolveWebhook(option: WebhookOptions | string | undefined): ResolvedWebhook | undefined {
  if (option === undefined) return undefined
  const o: WebhookOptions = typeof option === 'string' ? { url: option } : option
  if (typeof o !== 'object' || o === null) {
    throw new SluiceInputError(`webhook must be a URL or { url, … }, got ${describe(option)}`)
  }
  let url: URL
  try {
    url = new URL(o.url)
  } catch {
    throw new SluiceInputError(`webhook.url must be an http(s) URL, got ${describe(o.url)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SluiceInputError(`webhook.url must be an http(s) URL, got ${describe(o.url)}`)
  }
  const headers = o.headers ?? {}
  if (
    typeof headers !== 'object' ||
    headers === null ||
    Object.values(headers).some((v) => typeof v !== 'string')
  ) {
    throw new SluiceInputError(`webhook.headers must map names to strings, got ${describe(o.headers)}`)
  }
  const events = o.events ?? ['alert', 'detection']
  if (!Array.isArray(events) || events.some((e) => e !== 'alert' && e !== 'block' && e !== 'detection')) {
    throw new SluiceInputError(
      `webhook.events must list "alert", "block" and/or "detection", got ${describe(o.events)}`,
    )
  }
  return {
    url: url.href,
    timeoutMs: whole(o.timeoutMs, 5000, 1, 'webhook.timeoutMs'),
    retries: whole(o.retries, 3, 0, 'webhook.retries'),
    backoffMs: whole(o.backoffMs, 500, 0, 'webhook.backoffMs'),
    headers,
    events: new Set(events),
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Sends events as JSON POSTs in the background: never awaited by a request, retried with
 * backoff, each attempt bounded by a timeout. flush() waits for deliveries in progress.
 */
export class WebhookSender<T extends object = object> {
  private readonly pending = new Set<Promise<void>>()

  constructor(
    readonly options: ResolvedWebhook,
    private readonly onFailure: (attempts: number, error: string, payload: T) => void,
  ) {}

  send(payload: T): void {
    const delivery = this.deliver(JSON.stringify(payload)).then((failure) => {
      if (failure !== undefined) this.onFailure(failure.attempts, failure.error, payload)
    })
    this.pending.add(delivery)
    void delivery.finally(() => this.pending.delete(delivery))
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  /** Undefined once delivered; otherwise how many attempts failed and the last error. */
  private async deliver(body: string): Promise<{ attempts: number; error: string } | undefined> {
    const { url, timeoutMs, retries, backoffMs, headers } = this.options
    let lastError = ''
    let attempts = 0
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep(backoffMs * 2 ** (attempt - 1))
      attempts++
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'sluice-webhook', ...headers },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        })
        await res.body?.cancel()
        if (res.ok) return undefined
        lastError = `HTTP ${res.status}`
        // A 4xx other than 429 will not change on retry.
        if (res.status < 500 && res.status !== 429) break
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error)
      }
    }
    return { attempts, error: lastError }
  }
}
