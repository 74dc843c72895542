import { z } from 'zod'
import { describe } from '../../core/errors.js'
import { parseDuration, parseSize } from './values.js'

/** The value types sluice.yaml is written in: durations, sizes and numbers. */

function durationMs(options: { allowZero: boolean }) {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    const ms = parseDuration(value)
    const ok = ms !== undefined && Number.isSafeInteger(ms) && (options.allowZero ? ms >= 0 : ms > 0)
    if (!ok) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as "500ms", "30s", "5m", "1h", "1d" or a number of milliseconds${options.allowZero ? '' : ' above 0'}, got ${describe(value)}`,
      })
      return z.NEVER
    }
    return ms
  })
}
export const duration = durationMs({ allowZero: false })
export const durationOrZero = durationMs({ allowZero: true })

export const size = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const bytes = parseSize(value)
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a size such as "512kb", "10mb", "1gb" or a number of bytes, got ${describe(value)}`,
    })
    return z.NEVER
  }
  return bytes
})

export const positive = z.number().positive().finite()
export const positiveInt = z.number().int().positive()
export const nonNegative = z.number().nonnegative().finite()
