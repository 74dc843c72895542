import { describe, expect, it } from 'vitest'
import {
  BLOCK,
  checkStep,
  checkSubject,
  detectorSetFor,
  emptyState,
  emptyStuffing,
  fingerprint,
  hamming,
  LOOP_DEFAULTS,
  observeFailure,
  observeLoop,
  recordStep,
  recordSubject,
  resolveDetectors,
  THROTTLE,
} from '../../src/core/detectors/index.js'
import { SluiceInputError } from '../../src/core/errors.js'
import { type LoopEntry, observeList } from '../helpers/loop-list.js'

const T0 = 1_700_000_000_000
const set = (input = {}) => resolveDetectors(input).base

describe('fingerprints', () => {
  it('the same prompt modulo case and spaces hashes the same; a different one does not', () => {
    expect(fingerprint('Hello   World').hash).toBe(fingerprint(' hello world ').hash)
    expect(fingerprint('hello world').hash).not.toBe(fingerprint('hello there').hash)
  })
  it('near-identical prompts are few SimHash bits apart, unrelated ones many', () => {
    const base =
      'please summarise the following quarterly report for the board and list the three main risks you see in it'
    const a = fingerprint(`${base} attempt 1`)
    const b = fingerprint(`${base} attempt 2`)
    const c = fingerprint(
      'write a haiku about autumn leaves falling on a quiet pond in the early morning light',
    )
    expect(hamming(a, b)).toBeLessThanOrEqual(6)
    expect(hamming(a, c)).toBeGreaterThan(12)
  })
})

describe('prompt loops', () => {
  it('alerts and throttles at the configured count, blocks later; a throttled subject keeps its rate', () => {
    const s = set({ loop: { alertAt: 5, throttleAt: 5, blockAt: 8, throttlePerMinute: 1 }, spend: false })
    const state = emptyState()
    const step = checkStep(s, { prompt: 'do it again', isKey: false })!
    const outcomes = []
    for (let i = 0; i < 8; i++) outcomes.push(checkSubject(state, step, T0 + i))
    expect(outcomes.slice(0, 4).every((o) => o.raised.length === 0 && o.refused === undefined)).toBe(true)
    expect(outcomes[4]!.raised).toEqual([{ detector: 'loop', level: THROTTLE, value: 5, threshold: 5 }])
    // The throttle lets one request a minute through: the fifth (its first), then refuses.
    expect(outcomes[4]!.refused).toBeUndefined()
    expect(outcomes[5]!.refused?.detector).toBe('loop')
    expect(outcomes[7]!.raised[0]?.level).toBe(BLOCK)
    expect(outcomes[7]!.refused).toMatchObject({ level: BLOCK })
  })
  it('varied prompts raise nothing; state stays bounded', () => {
    const s = set({ spend: false })
    const state = emptyState()
    for (let i = 0; i < 500; i++) {
      const o = checkSubject(
        state,
        checkStep(s, { prompt: `question ${i}: what is ${i * 7} plus ${i}?`, isKey: false })!,
        T0 + i * 100,
      )
      expect(o.raised).toEqual([])
    }
    expect(state.loop.length).toBeLessThanOrEqual(
      Math.ceil(LOOP_DEFAULTS.blockAt * LOOP_DEFAULTS.nearFactor) + 1,
    )
  })
  it('prompts outside the window are forgotten', () => {
    const s = set({ loop: { alertAt: 3, throttleAt: 0, blockAt: 0, windowMs: 1000 }, spend: false })
    const state = emptyState()
    const step = checkStep(s, { prompt: 'same', isKey: false })!
    for (let i = 0; i < 10; i++) expect(checkSubject(state, step, T0 + i * 600).raised).toEqual([])
  })
  it('shadow mode reports but never refuses', () => {
    const s = set({ loop: { alertAt: 2, throttleAt: 2, blockAt: 3, shadow: true }, spend: false })
    const state = emptyState()
    const step = checkStep(s, { prompt: 'x', isKey: false })!
    const outs = [0, 1, 2, 3, 4].map((i) => checkSubject(state, step, T0 + i))
    expect(outs.flatMap((o) => o.raised).map((r) => r.level)).toEqual([THROTTLE, BLOCK])
    expect(outs.every((o) => o.refused === undefined)).toBe(true)
  })
})

describe('shared keys', () => {
  it('one alert when a key reaches the count of distinct addresses, a block when configured', () => {
    const s = set({ sharedKey: { alertAt: 10, blockAt: 20 }, spend: false, loop: false })
    const state = emptyState()
    const raised = []
    for (let i = 0; i < 50; i++) {
      const o = checkSubject(state, checkStep(s, { address: `10.0.0.${i}`, isKey: true })!, T0 + i)
      raised.push(...o.raised)
      if (i >= 19) expect(o.refused?.retryAfterMs).toBe(Number.POSITIVE_INFINITY)
    }
    expect(raised.map((r) => [r.level, r.value])).toEqual([
      [1, 10],
      [BLOCK, 20],
    ])
    expect(raised[0]!.addresses).toHaveLength(10)
    expect(state.addrs.size).toBeLessThanOrEqual(21)
  })
  it('a key from three addresses raises nothing', () => {
    const s = set()
    const state = emptyState()
    for (let i = 0; i < 300; i++) {
      const o = checkSubject(state, checkStep(s, { address: `10.0.0.${i % 3}`, isKey: true })!, T0 + i * 1000)
      expect(o.raised).toEqual([])
    }
  })
})

describe('shared keys: the threshold learned from a key’s history', () => {
  const W = 60_000
  const s = set({
    sharedKey: { alertAt: 100, windowMs: W, factor: 3, minAddresses: 8, warmup: 6 },
    spend: false,
    loop: false,
  })
  /** `windows` windows in which the key is used from `per` addresses, then one with `jump`. */
  function run(per: number, windows: number, jump: number) {
    const state = emptyState()
    const raised = []
    let t = T0 - (T0 % W)
    for (let w = 0; w < windows; w++, t += W) {
      for (let i = 0; i < per; i++) {
        raised.push(
          ...checkSubject(state, checkStep(s, { address: `10.${per}.0.${i}`, isKey: true })!, t + i).raised,
        )
      }
    }
    const before = raised.length
    for (let i = 0; i < jump; i++) {
      raised.push(
        ...checkSubject(state, checkStep(s, { address: `10.9.${per}.${i}`, isKey: true })!, t + i).raised,
      )
    }
    return { state, before, raised }
  }

  it('a key usually seen from 3 addresses alerts at a jump to 15; one usually seen from 30 does not', () => {
    const small = run(3, 10, 15)
    expect(small.before).toBe(0)
    expect(small.state.hist.b).toBeCloseTo(3, 9)
    // 3 × 3 = 9 addresses (above minAddresses 8): one alert, at the 9th, naming them.
    expect(small.raised.map((r) => [r.detector, r.level, r.value, r.threshold])).toEqual([
      ['sharedKey', 1, 9, 9],
    ])
    expect(small.raised[0]!.addresses).toHaveLength(9)
    const large = run(30, 10, 15)
    expect(large.raised).toEqual([])
    expect(large.state.hist.b).toBeCloseTo(30, 9)
  })

  it('no learned threshold during the warm-up, and never below minAddresses', () => {
    // Five windows of history (warm-up 6): the jump to 15 passes unseen (alertAt is 100).
    expect(run(3, 5, 15).raised).toEqual([])
    // A key seen from one address: 3 × 1 = 3, but the floor is 8.
    const one = run(1, 10, 15)
    expect(one.raised.map((r) => [r.value, r.threshold])).toEqual([[8, 8]])
  })

  it('a window that alerted does not teach the baseline; factor 0 turns learning off', () => {
    const state = emptyState()
    let t = T0 - (T0 % W)
    for (let w = 0; w < 12; w++, t += W) {
      // Six normal windows, then six leaked ones: each alerts, none is learned.
      const per = w < 6 ? 3 : 20
      for (let i = 0; i < per; i++)
        checkSubject(state, checkStep(s, { address: `10.0.${w}.${i}`, isKey: true })!, t + i)
    }
    expect(state.hist.b).toBeCloseTo(3, 9)
    const off = set({ sharedKey: { alertAt: 100, windowMs: W, factor: 0 }, spend: false, loop: false })
    const quiet = emptyState()
    t = T0 - (T0 % W)
    const raised = []
    for (let w = 0; w < 12; w++, t += W) {
      const per = w < 10 ? 3 : 20
      for (let i = 0; i < per; i++) {
        raised.push(
          ...checkSubject(quiet, checkStep(off, { address: `10.0.${w}.${i}`, isKey: true })!, t + i).raised,
        )
      }
    }
    expect(raised).toEqual([])
  })

  it('refuses a bad learning option, naming it', () => {
    expect(() => set({ sharedKey: { factor: 0.5 } })).toThrow(
      /detectors.sharedKey.factor must be 0 \(off\) or a number of at least 1/,
    )
    expect(() => set({ sharedKey: { minAddresses: 0 } })).toThrow(/detectors.sharedKey.minAddresses/)
  })
})

describe('spend velocity', () => {
  const o = {
    spend: { bucketMs: 1000, sustainMs: 2000, floorPerMinute: 60, factor: 10, halfLifeMs: 86_400_000 },
    loop: false,
  }
  it('a sustained spike over the baseline holds the subject to its baseline', () => {
    const s = set(o)
    const state = emptyState()
    state.spend.b = 100 // seeded: 100 tokens per second
    const check = checkStep(s, { isKey: false })!
    // Steady at the baseline for a minute: nothing.
    for (let t = 0; t < 60; t++) {
      expect(recordSubject(state, recordStep(s, { tokens: 100, usd: 0 }, 0.1)!, T0 + t * 1000)).toEqual([])
    }
    // 10× for two seconds.
    const raised = []
    for (let t = 60_000; t < 62_000; t += 100) {
      raised.push(...recordSubject(state, recordStep(s, { tokens: 100, usd: 0 }, 0.1)!, T0 + t))
    }
    expect(raised).toHaveLength(1)
    expect(raised[0]).toMatchObject({ detector: 'spend', level: THROTTLE })
    // Held: refused once the bucket's spend reaches the baseline, free again next bucket.
    const at = T0 + 63_000
    expect(checkSubject(state, check, at).refused).toBeUndefined()
    recordSubject(state, recordStep(s, { tokens: 100, usd: 0 }, 0.1)!, at)
    expect(checkSubject(state, check, at + 10).refused).toMatchObject({
      detector: 'spend',
      retryAfterMs: 990,
    })
  })
  it('steady spend with a little noise raises nothing', () => {
    const s = set(o)
    const state = emptyState()
    for (let t = 0; t < 600; t++) {
      expect(
        recordSubject(state, recordStep(s, { tokens: 5 + (t % 3), usd: 0 }, 0.2)!, T0 + t * 1000),
      ).toEqual([])
    }
  })
})

describe('slow scraping', () => {
  it('alerts once a subject stayed at 90 % of a limit for the configured time', () => {
    const s = set({ scraping: { forMs: 10_000, bucketMs: 1000 }, spend: false })
    const state = emptyState()
    const raised = []
    for (let t = 0; t < 20; t++)
      raised.push(...recordSubject(state, recordStep(s, { tokens: 0, usd: 0 }, 0.95)!, T0 + t * 1000))
    expect(raised).toEqual([{ detector: 'scraping', level: 1, value: 10, threshold: 10 }])
  })
  it('one bucket below the share starts the count again', () => {
    const s = set({ scraping: { forMs: 10_000, bucketMs: 1000 }, spend: false })
    const state = emptyState()
    for (let t = 0; t < 30; t++) {
      const used = t % 8 === 7 ? 0.5 : 0.95
      expect(recordSubject(state, recordStep(s, { tokens: 0, usd: 0 }, used)!, T0 + t * 1000)).toEqual([])
    }
  })
})

describe('credential stuffing', () => {
  it('one alert per window when failed keys come from many addresses', () => {
    const st = emptyStuffing()
    const raised = []
    for (let i = 0; i < 60; i++) {
      const r = observeFailure(
        st,
        {
          address: `10.1.0.${i}`,
          windowMs: 60_000,
          alertAt: 100,
          addressesAt: 20,
          prefixAddressesAt: 0,
          maxPrefixes: 1,
        },
        T0 + i,
      )
      raised.push(...r)
    }
    expect(raised).toHaveLength(1)
    expect(raised[0]).toMatchObject({ detector: 'stuffing', value: 20, threshold: 20 })
  })
})

describe('options', () => {
  it('names the bad option', () => {
    expect(() => resolveDetectors({ loop: { alertAt: -1 } })).toThrow(/detectors\.loop\.alertAt/)
    expect(() => resolveDetectors({ loop: { alertat: 3 } as never })).toThrow(/no option "alertat"/)
    expect(() => resolveDetectors({ spend: { unit: 'eur' as never } })).toThrow(SluiceInputError)
    expect(() => resolveDetectors({ tiers: { free: { nope: {} } as never } })).toThrow(/no detector "nope"/)
  })
  it('tiers and keys merge over the base; shadow applies to all', () => {
    const r = resolveDetectors({
      shadow: true,
      loop: { alertAt: 7 },
      tiers: { free: { loop: { alertAt: 3 } } },
      keys: { k1: { loop: false } },
    })
    expect(r.base.loop).toMatchObject({ alertAt: 7, shadow: true })
    expect(detectorSetFor(r, 'free', undefined).loop).toMatchObject({ alertAt: 3, shadow: true })
    expect(detectorSetFor(r, 'free', 'k1').loop).toBe(false)
    expect(detectorSetFor(r, 'other', 'k2').loop).toMatchObject({ alertAt: 7 })
  })
})

describe('the loop fingerprints (a ring)', () => {
  // Distance 1 and 3 count through the shared-quarter filter, 5 by counting bits alone; a clock
  // that goes back (times not falling from the newest on) is counted entry by entry, not searched.
  it.each([
    [1, false],
    [3, false],
    [5, false],
    [1, true],
    [5, true],
  ])(
    'counts as a newest-first list cut to max and to the window would, also when max changes (distance %i, clock going back %s)',
    (distance, back) => {
      const state = emptyState()
      const list: LoopEntry[] = []
      const next = (() => {
        let x = 7
        return (below: number) => {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0
          return (x >>> 8) % below
        }
      })()
      for (let i = 0; i < 400; i++) {
        const max = [5, 3, 9, 1, 6][Math.floor(i / 80)]!
        const now = T0 + i * 10 + next(3) * 5 - (back && next(4) === 0 ? 30 : 0)
        // SimHash halves at and above 2^31 too: the ring keeps them as int32 and answers them
        // unsigned. Some a few bits from others, some a quarter apart only.
        const hi = (next(8) ^ (i % 3 === 0 ? 0x80000000 : 0) ^ (next(5) === 0 ? 0x00ff0000 : 0)) >>> 0
        const lo = [0xffffffff, 0xfffffffe, 0xfffefffe, 0xfff0fffe, 0x0000fffe][next(5)]!
        const e = {
          at: now,
          hash: ['00000000000000a1', '00000000000000a2', 'a1a1a1a100000000', 'fedcba9876543210'][next(4)]!,
          hi,
          lo,
        }
        const windowMs = 40 + next(60)
        // The list the ring stands for.
        const expected = observeList(list, e, now, windowMs, max, distance)
        expect(observeLoop(state, e, now, windowMs, max, distance)).toEqual(expected)
        expect(state.loop.length).toBe(list.length)
        for (let j = 0; j < list.length; j++) expect(state.loop.at(j)).toEqual(list[j])
      }
    },
  )
})
