import type { DriveResult } from './drive.js'
import type { Measure, RedisHandle } from './types.js'

/** Commands the bench itself sends around a measurement; not the limiter's. */
const OWN_COMMANDS = new Set(['info', 'config|resetstat', 'config', 'flushall', 'ping', 'quit'])
const SCRIPT_COMMANDS = new Set(['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'fcall_ro'])

/** redis-server's CPU time so far, in user space and in the kernel (seconds), from `INFO cpu`. */
export function redisCpuSeconds(info: string): { user: number; sys: number } {
  const user = Number(/^used_cpu_user:([\d.]+)/m.exec(info)?.[1])
  const sys = Number(/^used_cpu_sys:([\d.]+)/m.exec(info)?.[1])
  return { user, sys }
}

/** redis-server's CPU time so far, user and kernel together (seconds), from `INFO cpu`. */
export function redisCpuTotalSeconds(info: string): number {
  const { user, sys } = redisCpuSeconds(info)
  return user + sys
}

/**
 * What each decision cost Redis during the measured period: CPU time of redis-server (INFO cpu),
 * commands it executed (INFO commandstats, which counts the commands a script runs too), and
 * script calls alone (EVALSHA/EVAL: one per round trip of a script-based limiter).
 */
export function redisCost(redis: RedisHandle) {
  let calls = new Map<string, number>()
  let cpu = 0
  return {
    async beforeMeasure() {
      calls = await redis.commandCalls()
      cpu = redisCpuTotalSeconds(await redis.info('cpu'))
    },
    async afterMeasure(result: DriveResult): Promise<Record<string, number>> {
      const cpuAfter = redisCpuTotalSeconds(await redis.info('cpu'))
      const after = await redis.commandCalls()
      let all = 0
      let scripts = 0
      for (const [cmd, n] of after) {
        if (OWN_COMMANDS.has(cmd)) continue
        const delta = n - (calls.get(cmd) ?? 0)
        all += delta
        if (SCRIPT_COMMANDS.has(cmd)) scripts += delta
      }
      return {
        redisCpuUsPerOp: ((cpuAfter - cpu) * 1e6) / result.ops,
        redisCommandsPerOp: all / result.ops,
        scriptCallsPerOp: scripts / result.ops,
      }
    },
  }
}

function fmt(x: number | undefined, digits = 2): string {
  if (x === undefined || !Number.isFinite(x)) return '—'
  return x >= 0.1 || x === 0 ? x.toFixed(digits) : x.toPrecision(2)
}

/** "redis per decision: CPU 6.1 vs 4.0 µs, commands 2.0 vs 4.0, script calls 0.008 vs 1.0" */
export function redisCostNote(measures: Measure[], per = 'decision'): string {
  const pick = (k: string) =>
    measures.map((m) => fmt(m.extra?.[k], k === 'redisCpuUsPerOp' ? 1 : 2)).join(' vs ')
  return (
    `per ${per} in Redis: CPU ${pick('redisCpuUsPerOp')} µs, commands ${pick('redisCommandsPerOp')}, ` +
    `script calls ${pick('scriptCallsPerOp')}`
  )
}
