/**
 * Detectors.setFor keeps the last subject's detector set to skip the lookup: a call from another
 * tier or key must still get its own set, never the one kept from the call before.
 */
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { detectorSetFor } from '../../src/core/detectors/index.js'
import { Detectors } from '../../src/http/detect.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { MemoryStore } from '../../src/store/memory.js'

describe('Detectors.setFor', () => {
  it("answers each tier's and key's own set, whatever the call before asked for", () => {
    const detectors = new Detectors(
      {
        store: new MemoryDetectorStore(),
        tiers: { free: { loop: { alertAt: 3 } } },
        keys: { k1: { loop: false }, k2: { spend: false } },
      },
      {
        store: new MemoryStore(),
        prefix: undefined,
        events: new EventEmitter(),
        logger: undefined,
        webhook: undefined,
        metrics: undefined,
        isShadow: () => false,
      },
    )
    const asks: [string, string | undefined][] = [
      ['free', 'k1'],
      ['free', 'k1'],
      ['free', 'k2'],
      ['paid', 'k2'],
      ['paid', undefined],
      ['free', undefined],
      ['free', 'k3'],
      ['free', 'k1'],
      ['paid', 'k1'],
    ]
    for (const [tier, keyId] of asks) {
      expect(detectors.setFor(tier, keyId), `${tier} ${keyId}`).toEqual(
        detectorSetFor(detectors.options, tier, keyId),
      )
    }
    expect(detectors.setFor('free', 'k1').loop).toBe(false)
    expect(detectors.setFor('free', 'k2').loop).toMatchObject({ alertAt: 3 })
    expect(detectors.setFor('paid', 'k2').spend).toBe(false)
  })
})
