/**
 * Detectors.checkNow(), the gateway's way into the detectors before admission: on a MemoryStore
 * it answers at once (no promise), the same as check() and in the same order — the loop's
 * throttle refused with the same body, the raised level reported once, before the answer — and
 * on a store that answers later it answers a promise of the same.
 */
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { CheckOutcome, CheckStep } from '../../src/core/detectors/index.js'
import { type DetectionRefusal, Detectors } from '../../src/http/detect.js'
import type { DetectionEvent, SluiceEvents } from '../../src/http/events.js'
import type { Identity } from '../../src/http/identity.js'
import { MemoryStore } from '../../src/index.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import type { DetectorStore } from '../../src/store/detectors/types.js'
import { clearOfWindowEdge, MINUTE } from '../helpers/window-edge.js'

const who: Identity = {
  kind: 'key',
  subject: 'key:k1',
  tier: 'service',
  scope: 'key',
  ip: '10.0.0.1',
  ipGroup: '10.0.0.1',
  keyId: 'k1',
}
const LOOP = {
  loop: { alertAt: 3, throttleAt: 3, blockAt: 0, throttlePerMinute: 1 },
  scraping: false as const,
}

function detectorsOn(store?: DetectorStore) {
  const events = new EventEmitter<SluiceEvents>()
  const seen: DetectionEvent[] = []
  events.on('detection', (e) => seen.push(e))
  const detectors = new Detectors(
    { ...LOOP, ...(store && { store }) },
    {
      store: new MemoryStore(),
      prefix: undefined,
      events,
      logger: undefined,
      webhook: undefined,
      metrics: undefined,
      isShadow: () => false,
    },
  )
  return { detectors, seen }
}

describe('Detectors.checkNow', () => {
  it('answers at once on a MemoryStore, as check() does a turn later', async () => {
    const now = detectorsOn()
    const later = detectorsOn()
    const answers: (DetectionRefusal | undefined)[] = []
    // Both throttles keep one request a clock minute: none turns between their answers.
    await clearOfWindowEdge(MINUTE, 5_000)
    for (let i = 0; i < 5; i++) {
      const answer = now.detectors.checkNow(who, 'Are we there yet?')
      expect(answer).not.toBeInstanceOf(Promise)
      const sync = answer as DetectionRefusal | undefined
      // A raised level is reported before the answer is given.
      if (sync !== undefined) expect(now.seen).toHaveLength(1)
      answers.push(sync)
      expect(shape(await later.detectors.check(who, 'Are we there yet?'))).toEqual(shape(sync))
    }
    const refused = answers.filter((a) => a !== undefined)
    expect(refused.length).toBeGreaterThan(0)
    expect(shape(refused[0])).toEqual({ status: 429, code: 'prompt_loop', retry: 'false' })
    expect(now.seen.map((e) => [e.detector, e.level, e.value])).toEqual([['loop', 'throttle', 3]])
    expect(later.seen.map((e) => [e.detector, e.level, e.value])).toEqual([['loop', 'throttle', 3]])
  })

  it('answers a promise of the same when the store answers later', async () => {
    const memory = new MemoryDetectorStore()
    const slow = new Proxy(memory, {
      get(target, name, receiver) {
        if (name !== 'check') return Reflect.get(target, name, receiver)
        return (subject: string, step: CheckStep): Promise<CheckOutcome> =>
          new Promise((resolve) => setImmediate(() => resolve(target.check(subject, step) as CheckOutcome)))
      },
    })
    const delayed = detectorsOn(slow)
    const now = detectorsOn()
    for (let i = 0; i < 5; i++) {
      const answer = delayed.detectors.checkNow(who, 'Are we there yet?')
      expect(answer).toBeInstanceOf(Promise)
      expect(shape(await answer)).toEqual(shape(now.detectors.checkNow(who, 'Are we there yet?')))
    }
    expect(delayed.seen.map((e) => [e.detector, e.level, e.value])).toEqual([['loop', 'throttle', 3]])
  })
})

/** What a refusal says, without its wait (which depends on the time). */
function shape(answer: unknown) {
  if (answer === undefined) return undefined
  const a = answer as DetectionRefusal
  return { status: a.status, code: a.body.error.code, retry: a.headers['x-should-retry'] }
}
