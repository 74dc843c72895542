import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CALENDAR_PERIODS, periodBounds } from '../src/core/period.js'
import { type RedisServer, startRedis } from './helpers/redis-server.js'

const read = (path: string) => readFileSync(new URL(`../src/store/redis/${path}`, import.meta.url), 'utf8')

/**
 * The calendar algorithm's Lua part (run by Redis on its own clock) against core/period.ts at
 * any instant: this script sets the prelude's `now` to each given time and asks the part for the
 * period it is in. The contract suite checks the same at the present time through the stores.
 */
const SCRIPT = `${read('prelude.lua')}
local calendar = (function()
${read('lua/calendar.lua')}
end)()
local p = calendar.params({ 1, tonumber(ARGV[1]), tonumber(ARGV[2]), 1 })
local out = {}
for i = 3, #ARGV do
  now = tonumber(ARGV[i])
  local _, _, reset_ms, _, start = calendar.check(p, 1, {}, nil, nil)
  out[#out + 1] = format('%d', start)
  out[#out + 1] = format('%d', now + reset_ms)
end
return out
`

const CODES = { day: 1, week: 2, month: 3 } as const

describe('calendar.lua computes the periods of core/period.ts', () => {
  let server: RedisServer
  let client: Redis
  beforeAll(async () => {
    server = await startRedis()
    client = new Redis(server.url)
  })
  afterAll(async () => {
    client.disconnect()
    await server.stop()
  })

  it('for any time from 1970 to 2400, any period and any offset from -12:00 to +14:00', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...CALENDAR_PERIODS),
        fc.integer({ min: -720, max: 840 }),
        fc.array(fc.integer({ min: 0, max: 13_569_465_600_000 }), { minLength: 1, maxLength: 200 }),
        async (period, offset, times) => {
          const reply = (await client.eval(SCRIPT, 0, CODES[period], offset, ...times)) as string[]
          times.forEach((now, i) => {
            const { start, end } = periodBounds(period, now, offset)
            expect([Number(reply[2 * i]), Number(reply[2 * i + 1])], `${period} ${offset} ${now}`).toEqual([
              start,
              end,
            ])
          })
        },
      ),
      { numRuns: 60 },
    )
  })

  it('at the edges: the last millisecond of a period and the first of the next, across leap days and years', async () => {
    const edges = [
      '2024-02-29T00:00:00Z',
      '2024-03-01T00:00:00Z',
      '2023-12-31T23:59:59.999Z',
      '2024-01-01T00:00:00Z',
      '2100-03-01T00:00:00Z',
      '2000-02-29T12:00:00Z',
    ]
    for (const period of CALENDAR_PERIODS) {
      for (const offset of [0, 330, -480, 840, -720]) {
        const times = edges.flatMap((t) => [Date.parse(t) - 1, Date.parse(t)])
        const reply = (await client.eval(SCRIPT, 0, CODES[period], offset, ...times)) as string[]
        times.forEach((now, i) => {
          const { start, end } = periodBounds(period, now, offset)
          expect([Number(reply[2 * i]), Number(reply[2 * i + 1])]).toEqual([start, end])
        })
      }
    }
  })
})
