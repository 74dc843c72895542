/** `detectors:` in sluice.yaml: durations as durations, and a bad value refused naming the option. */
import { describe, expect, it } from 'vitest'
import { detectorsInput } from '../../src/gateway/config/detectors-schema.js'
import { ConfigError, parseConfig } from '../../src/gateway/config/load.js'
import { checkConfig } from '../../src/gateway/index.js'

function problems(input: unknown): string {
  try {
    checkConfig(parseConfig(input as never))
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.join('\n')
    throw error
  }
  throw new Error('expected a ConfigError')
}

describe('detectors in sluice.yaml', () => {
  it('reads durations and renames them for the library', () => {
    const config = parseConfig({
      detectors: {
        loop: { window: '2m', blockFor: '1h' },
        spend: { sustain: '90s', bucket: '30s' },
        scraping: false,
      },
    })
    expect(detectorsInput(config.detectors!)).toEqual({
      loop: { windowMs: 120_000, blockMs: 3_600_000 },
      spend: { sustainMs: 90_000, bucketMs: 30_000 },
      scraping: false,
    })
    checkConfig(config)
  })
  it('refuses a bad value or an unknown option, naming it', () => {
    expect(problems({ detectors: { loop: { window: 'soon' } } })).toMatch(/detectors\.loop\.window/)
    expect(problems({ detectors: { loop: { alertat: 3 } } })).toMatch(/alertat/)
    expect(problems({ detectors: { spend: { factor: 0.5 } } })).toMatch(
      /detectors\.spend\.factor must be a number of at least 1/,
    )
    expect(problems({ detectors: { spend: { sustain: '10s', bucket: '1m' } } })).toMatch(
      /sustainMs must be at least/,
    )
  })
})
