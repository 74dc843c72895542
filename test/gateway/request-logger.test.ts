import type { Logger } from 'pino'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/gateway/config/load.js'
import { createGatewayLogger } from '../../src/gateway/logger.js'
import { requestLogger } from '../../src/gateway/request-logger.js'
import { generateApiKey } from '../../src/http/index.js'

function gatewayLogger(level: string): {
  logger: Logger
  lines: Record<string, unknown>[]
  children: () => number
} {
  const lines: Record<string, unknown>[] = []
  const logger = createGatewayLogger(parseConfig({ log: { level } }), {
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  })
  let made = 0
  const child = logger.child.bind(logger)
  logger.child = ((...args: Parameters<Logger['child']>) => {
    made++
    return child(...args)
  }) as Logger['child']
  return { logger, lines, children: () => made }
}

describe('the gateway request logger', () => {
  it('makes no pino child for a request that logs nothing at the current level', () => {
    const { logger, lines, children } = gatewayLogger('warn')
    const log = requestLogger(logger, { reqId: 'req-1' }, {})
    log.info('not at this level')
    log.debug({ some: 'thing' }, 'nor this')
    expect((log as unknown as Logger).isLevelEnabled('info')).toBe(false)
    expect((log as unknown as Logger).isLevelEnabled('error')).toBe(true)
    expect(children()).toBe(0)
    expect(lines).toEqual([])
    expect(log.level).toBe('warn')
    expect((log as unknown as Logger).bindings()).toMatchObject({ reqId: 'req-1' })
  })

  it('logs with the request id and the same redaction once something is logged', () => {
    const { logger, lines, children } = gatewayLogger('warn')
    const log = requestLogger(logger, { reqId: 'req-2' }, {})
    const key = generateApiKey()
    log.warn({ upstream: { headers: { authorization: `Bearer ${key}` } } }, 'upstream refused')
    log.error('again')
    expect(children()).toBe(1)
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({ reqId: 'req-2', msg: 'upstream refused', level: 40 })
    expect(JSON.stringify(lines)).not.toContain(key)
    expect(lines[1]).toMatchObject({ reqId: 'req-2', msg: 'again', level: 50 })
  })

  it('a route with its own level gets a real child at once', () => {
    const { logger, lines } = gatewayLogger('warn')
    const log = requestLogger(logger, { reqId: 'req-3' }, { level: 'debug' })
    log.debug('shown at the route level')
    expect(lines).toMatchObject([{ reqId: 'req-3', msg: 'shown at the route level' }])
  })
})
