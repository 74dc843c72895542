import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString, Logger } from 'pino'

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const
type Level = (typeof LEVELS)[number]

/**
 * Fastify makes a child logger for every request. With the gateway's key redaction, pino runs the
 * redaction over each child's bindings when it is made — work on every call, although at the
 * usual levels a call logs nothing. This request logger makes its pino child on first use only.
 */
class RequestLogger {
  private made: FastifyBaseLogger | undefined

  constructor(
    private readonly parent: Logger,
    private readonly childBindings: Bindings,
  ) {}

  get level(): LevelWithSilentOrString {
    return this.made?.level ?? this.parent.level
  }

  set level(level: LevelWithSilentOrString) {
    this.real().level = level
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, options)
  }

  silent(): void {}

  isLevelEnabled(level: string): boolean {
    return (this.made as Logger | undefined)?.isLevelEnabled(level) ?? this.parent.isLevelEnabled(level)
  }

  bindings(): Bindings {
    return (this.real() as Logger).bindings()
  }

  private real(): FastifyBaseLogger {
    this.made ??= this.parent.child(this.childBindings)
    return this.made
  }

  /** @internal */
  log(level: Level, args: unknown[]): void {
    if (this.made === undefined && !this.parent.isLevelEnabled(level)) return
    ;(this.real()[level] as (...a: unknown[]) => void)(...args)
  }
}

for (const level of LEVELS) {
  Object.defineProperty(RequestLogger.prototype, level, {
    value(this: RequestLogger, ...args: unknown[]) {
      this.log(level, args)
    },
  })
}

/**
 * Fastify's `childLoggerFactory` for the gateway: a lazy child, unless the route sets its own
 * level (then a real child at once, as Fastify would make).
 */
export function requestLogger(
  this: unknown,
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  if (options.level !== undefined) return logger.child(bindings, options)
  return new RequestLogger(logger as Logger, bindings) as unknown as FastifyBaseLogger
}
