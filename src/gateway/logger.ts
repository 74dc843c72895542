import { type DestinationStream, type Logger, pino } from 'pino'
import type { GatewayConfig } from './config/schema.js'

/** Headers that carry credentials, besides the configured API key headers. */
const SECRET_HEADERS = ['authorization', 'x-api-key', 'proxy-authorization', 'cookie']

/** Strings that look like API keys (sk-sluice-…, OpenAI's sk-…, sk-proj-…) and bearer tokens. */
const KEY_PATTERN = /\bsk-[A-Za-z0-9_-]{16,}/g
const BEARER_PATTERN = /(Bearer\s+)[^\s"\\]+/gi
const REDACTED = '[redacted]'

export interface GatewayLoggerOptions {
  /** Where JSON lines go (default: stderr, asynchronously). */
  destination?: DestinationStream
  /** Exact strings never to write (e.g. the demo key), whatever field or message holds them. */
  secrets?: readonly string[]
}

/** pino redact paths for every header that may carry a key, wherever a headers object is logged. */
function redactPaths(apiKeyHeaders: readonly string[]): string[] {
  const names = new Set([...SECRET_HEADERS, ...apiKeyHeaders.map((h) => h.toLowerCase())])
  const paths = ['apiKey', '*.apiKey']
  for (const name of names) {
    const field = `[${JSON.stringify(name)}]`
    paths.push(`req.headers${field}`, `headers${field}`, `*.headers${field}`, `*.*.headers${field}`)
  }
  return paths
}

/** Removes anything shaped like a key (and the given secrets) from one formatted log line. */
export function scrubSecrets(line: string, secrets: readonly string[] = []): string {
  let out = line.replace(KEY_PATTERN, REDACTED).replace(BEARER_PATTERN, `$1${REDACTED}`)
  for (const secret of secrets)
    if (secret !== '' && out.includes(secret)) out = out.split(secret).join(REDACTED)
  return out
}

/**
 * The gateway's pino logger: JSON lines, with key-carrying headers redacted by path, and — as a
 * second line of defence for keys in messages or error texts — every line scrubbed of strings that
 * look like keys before it is written.
 */
export function createGatewayLogger(config: GatewayConfig, options: GatewayLoggerOptions = {}): Logger {
  const target = options.destination ?? pino.destination({ dest: 2, sync: false })
  const secrets = options.secrets ?? []
  const scrubbing: DestinationStream = {
    write: (line: string) => target.write(scrubSecrets(line, secrets)),
  }
  const flushable = target as DestinationStream & {
    flush?: (cb?: () => void) => void
    flushSync?: () => void
  }
  if (typeof flushable.flush === 'function') Object.assign(scrubbing, { flush: flushable.flush.bind(target) })
  if (typeof flushable.flushSync === 'function') {
    Object.assign(scrubbing, { flushSync: flushable.flushSync.bind(target) })
  }
  return pino(
    {
      name: 'sluice',
      level: config.log.level,
      redact: { paths: redactPaths(config.auth.apiKeyHeaders ?? []), censor: REDACTED },
    },
    scrubbing,
  )
}
