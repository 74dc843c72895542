/**
 * Most subjects never alert, spike or scrape: their fields in the subject's hash stay at their
 * defaults, and such a field is not written there (lua/subject.lua DEFAULTS) — each field the hash
 * holds costs every later script call that reads it (HGETALL's reply, a Lua string each for the
 * field and its value, the loop over them). A field that left its default and came back to it is
 * written back, as any change is.
 */
import { describe, expect, it } from 'vitest'
import { checkStep, recordStep, resolveDetectors } from '../../src/core/detectors/index.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { redisForFile } from '../helpers/redis-clients.js'
import { sleep } from '../helpers/sleep.js'

const { client: plainClient } = redisForFile()

// Every detector at its defaults but a spend floor no call reaches (as the `detectors` bench row).
const quiet = resolveDetectors({ spend: { floorPerMinute: 1e12 } }).base

describe('Redis detector store: fields at their defaults are not written', () => {
  it('a subject that never alerted, spiked or scraped keeps none of those fields', async () => {
    const client = plainClient()
    const store = new RedisDetectorStore({ client, prefix: 'quiet2:', recordLingerMs: 0 })
    for (let i = 0; i < 5; i++) {
      await Promise.all([
        store.check('key:a', checkStep(quiet, { prompt: `p ${i}`, isKey: true, address: '10.0.0.1' })!),
        store.record('key:a', recordStep(quiet, { tokens: 30, usd: 0.001 }, 0.1)!),
      ])
    }
    const fields = Object.keys(await client.hgetall(store.keys('key:a').state)).sort()
    // What moves on every call (the windows, the spend, the oldest address, when to renew).
    expect(fields).toEqual(['ao', 'cm', 'he', 'hp', 'sm', 'ss', 'xa', 'xl', 'xs'])
  })

  it('a field that left its default and came back to it is written back', async () => {
    const client = plainClient()
    const store = new RedisDetectorStore({ client, prefix: 'quiet3:', recordLingerMs: 0 })
    const scraping = resolveDetectors({
      loop: false,
      sharedKey: false,
      spend: false,
      scraping: { bucketMs: 300, forMs: 3_000, share: 0.9 },
    }).base
    const state = store.keys('key:a').state
    await store.record('key:a', recordStep(scraping, { tokens: 1, usd: 0 }, 0.95)!)
    expect(await client.hget(state, 'chi')).toBe('1')
    // A later bucket below the share: at its default again, and so in the hash, not left at 1.
    await sleep(350)
    await store.record('key:a', recordStep(scraping, { tokens: 1, usd: 0 }, 0.5)!)
    expect(await client.hget(state, 'chi')).toBe('0')
  })
})
