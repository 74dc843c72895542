/**
 * The set text a step sends names every parameter of the detectors it runs; the store keeps the
 * last one made. Steps of different sets in turn, and steps of one set whose facts switch a
 * detector's part on or off (a country, a prompt, a key), must each get their own text: the text
 * kept must equal the one made afresh.
 */
import { describe, expect, it } from 'vitest'
import {
  type CheckStep,
  checkStep,
  type RecordStep,
  recordStep,
  resolveDetectors,
} from '../../src/core/detectors/index.js'
import { SetTexts } from '../../src/store/detectors/set-texts.js'

const set = (input = {}) => resolveDetectors(input).base
const sets = [
  set(),
  set({ loop: { alertAt: 3, throttleAt: 5, blockAt: 9, throttlePerMinute: 2 } }),
  set({ sharedKey: { countriesAt: 2 } }),
  set({ spend: { unit: 'usd', hold: false }, scraping: { action: 'throttle' } }),
  set({ spend: false, loop: false }),
]

const checks: CheckStep[] = []
const records: RecordStep[] = []
for (const s of sets) {
  for (const facts of [
    { prompt: 'hello there', isKey: true, address: '10.0.0.1', country: 'DE' },
    { prompt: 'hello there', isKey: true, address: '10.0.0.1' },
    { prompt: undefined, isKey: true, address: '10.0.0.2' },
    { prompt: 'hello there', isKey: false, address: '10.0.0.3' },
  ]) {
    const step = checkStep(s, facts)
    if (step !== undefined) checks.push(step)
  }
  for (const used of [undefined, 0.5]) {
    const step = recordStep(s, { tokens: 120, usd: 0.25 }, used)
    if (step !== undefined) records.push(step)
  }
}

describe('SetTexts: the last set text kept, never another set', () => {
  it('check steps of five sets, each fact switching parts on and off, in every order', () => {
    const kept = new SetTexts(60_000)
    // Each step after each other step, twice: a stale text shows as a difference.
    const texts = new Set<string>()
    for (const a of checks) {
      for (const b of [...checks, a]) {
        expect(kept.checkSet(b)).toBe(new SetTexts(60_000).checkSet(b))
        texts.add(kept.checkSet(b))
      }
    }
    // The steps do differ: several texts, not one.
    expect(texts.size).toBeGreaterThan(5)
  })

  it('a step that differs from the one before in one part alone', () => {
    const full = checks.find((c) => c.loop !== undefined && c.address?.country !== undefined && c.spend)!
    const other = checkStep(
      set({
        loop: { alertAt: 4, throttleAt: 6, blockAt: 8, throttlePerMinute: full.throttlePerMinute },
        sharedKey: { alertAt: 30, countriesAt: 5 },
        spend: { factor: 20 },
        scraping: { action: 'throttle', bucketMs: 120_000 },
      }),
      { prompt: 'hello there', isKey: true, address: '10.0.0.1', country: 'DE' },
    )!
    const { address, ...rest } = full
    const variants: CheckStep[] = [
      { ...full, loop: other.loop },
      { ...full, loop: undefined },
      { ...full, spend: other.spend },
      { ...full, scrapeBucketMs: other.scrapeBucketMs },
      { ...full, enforce: [] },
      { ...full, throttlePerMinute: full.throttlePerMinute + 1 },
      { ...rest, address: { ...address!, country: other.address!.country } },
      { ...rest, address: { ...address!, country: undefined } },
      { ...rest, address: { ...other.address!, country: address!.country } },
    ]
    const kept = new SetTexts(60_000)
    for (const v of variants) {
      const made = new SetTexts(60_000)
      expect(kept.checkSet(full)).toBe(made.checkSet(full))
      expect(kept.checkSet(v)).toBe(new SetTexts(60_000).checkSet(v))
      expect(kept.checkSet(v)).not.toBe(made.checkSet(full))
    }
  })

  it('record steps: spend with and without hold, scraping on and off', () => {
    const kept = new SetTexts(60_000)
    const held = { ...records.find((r) => r.spend !== undefined)! }
    held.spend = { ...held.spend!, hold: !held.spend!.hold }
    // Another spend detector with the same hold: only its parameters differ.
    const other = recordStep(set({ spend: { factor: 20 } }), { tokens: 120, usd: 0.25 }, undefined)!
    const all = [...records, held, other]
    const texts = new Set<string>()
    for (const a of all) {
      for (const b of [...all, a]) {
        expect(kept.recordSet(b)).toBe(new SetTexts(60_000).recordSet(b))
        texts.add(kept.recordSet(b))
      }
    }
    expect(texts.size).toBeGreaterThan(2)
  })

  it('the ttl is part of the text', () => {
    expect(new SetTexts(1_000).checkSet(checks[0]!)).not.toBe(new SetTexts(2_000).checkSet(checks[0]!))
  })
})
