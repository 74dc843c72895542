/**
 * The loop count on Redis against the memory store where a subject's stored string is mostly the
 * same few fingerprints (a loop of 1–4 prompts, one prompt over and over: lua/loop.lua counts a run
 * of identical entries apart and passes over it), with fingerprints of pattern-magic bytes ('%',
 * '.', '[', ']', '(', ')', '*', '+', '-', '?', '^', '$', NUL), near variants (1–3 bits apart, another
 * hash), a 64-bit hash collision (the same hash, another SimHash), and one whose bytes straddle an
 * entry's time and the next bytes of another entry (its hash and whole fingerprint found there, not
 * where an entry keeps them: never counted). Fingerprints are set as the check's step carries them.
 * Runs of one prompt with near variants between them: more near than identical, so that the near
 * count decides. One check per subject a script call: the count is the stored string's. The thresholds go from 2
 * to 30, one subject each, so that each count from 2 on shows where it is first reached.
 */
import { describe, expect, it } from 'vitest'
import {
  type CheckOutcome,
  type CheckStep,
  checkStep,
  resolveDetectors,
} from '../../src/core/detectors/index.js'
import { prng as random } from '../../src/gateway/mock/generate.js'
import { MemoryDetectorStore } from '../../src/store/detectors/memory.js'
import { RedisDetectorStore } from '../../src/store/detectors/redis.js'
import { redisForFile } from '../helpers/redis-clients.js'

const { client } = redisForFile()
let n = 0

interface Fp {
  hash: string
  hi: number
  lo: number
}

/** 16 bytes as a fingerprint: the hash's halves and the SimHash's, each little-endian (redis.ts loopArg). */
function fpOf(bytes: number[]): Fp {
  const b = Buffer.from(bytes)
  const hex = (x: number) => x.toString(16).padStart(8, '0')
  return {
    hash: hex(b.readUInt32LE(0)) + hex(b.readUInt32LE(4)),
    hi: b.readUInt32LE(8),
    lo: b.readUInt32LE(12),
  }
}

const MAGIC = [0x25, 0x2e, 0x5b, 0x5d, 0x28, 0x29, 0x2a, 0x2b, 0x2d, 0x3f, 0x5e, 0x24, 0x00]
const flip = (f: Fp, bits: number[]): Fp => {
  let { hi, lo } = f
  for (const b of bits)
    if (b < 32) hi = (hi ^ (1 << b)) >>> 0
    else lo = (lo ^ (1 << (b - 32))) >>> 0
  return {
    hash: `${f.hash.slice(0, 15)}${((Number.parseInt(f.hash[15]!, 16) + 1) % 16).toString(16)}`,
    hi,
    lo,
  }
}

/**
 * The fingerprints: four of magic bytes; `straddle`, whose 16 bytes an entry of `host` holds from
 * its time's last byte on (`t7`: that byte of the times Redis stamps now); near variants of the
 * first; a collision of the first's hash.
 */
function fingerprints(t7: number) {
  const magic = Array.from({ length: 4 }, (_, k) =>
    fpOf(Array.from({ length: 16 }, (_, i) => MAGIC[(i * (k + 3) + k) % MAGIC.length]!)),
  )
  const hostBytes = Array.from({ length: 16 }, (_, i) => MAGIC[(i * 5 + 2) % MAGIC.length]! ^ (i & 1))
  const host = fpOf(hostBytes)
  const straddle = fpOf([t7, ...hostBytes.slice(0, 15)])
  const near = [flip(magic[0]!, [1]), flip(magic[0]!, [17, 40]), flip(magic[0]!, [0, 33, 63])]
  const collision = { hash: magic[0]!.hash, hi: ~magic[0]!.hi >>> 0, lo: magic[0]!.lo }
  return { magic, host, straddle, near, collision }
}

/** A sequence of fingerprints: phases of a loop of 1 to 4, with the others mixed in. */
function sequence(seed: number, f: ReturnType<typeof fingerprints>, length: number): Fp[] {
  const r = random(seed)
  const out: Fp[] = []
  while (out.length < length) {
    const kind = Math.floor(r() * 5)
    let run = 5 + Math.floor(r() * 25)
    if (kind === 0) {
      // one prompt over and over (a run), now and then another between
      const p = f.magic[Math.floor(r() * 4)]!
      for (let i = 0; i < run; i++) out.push(r() < 0.1 ? f.near[Math.floor(r() * 3)]! : p)
    } else if (kind === 1) {
      // the straddling one in runs, its host between them
      for (let i = 0; i < run; i++) out.push(r() < 0.3 ? f.host : f.straddle)
    } else if (kind === 2) {
      // runs of 2 or 3 of one prompt, near variants between them (more near than identical)
      const p = f.magic[0]!
      while (out.length < length && run-- > 0) {
        for (let i = 2 + Math.floor(r() * 2); i > 0; i--) out.push(p)
        for (let i = 1 + Math.floor(r() * 3); i > 0; i--) out.push(f.near[Math.floor(r() * 3)]!)
      }
    } else {
      // a loop of 2 to 4 prompts, with near variants and the collision mixed in
      const k = 2 + Math.floor(r() * 3)
      for (let i = 0; i < run; i++) {
        const x = r()
        out.push(x < 0.08 ? f.collision : x < 0.2 ? f.near[Math.floor(r() * 3)]! : f.magic[i % k]!)
      }
    }
  }
  // Last a run of one prompt long enough to reach every threshold not reached before (the
  // others show the counts at the checks before it).
  return [...out.slice(0, length), ...Array.from({ length: 31 }, () => f.magic[seed % 4]!)]
}

const setOf = (alertAt: number, nearDistance: number) =>
  resolveDetectors({
    loop: { alertAt, throttleAt: 0, blockAt: 0, nearDistance, nearFactor: 1, throttlePerMinute: 1000 },
    spend: false,
    sharedKey: false,
    scraping: false,
  }).base

const seen = (o: CheckOutcome) => ({ raised: o.raised, refused: o.refused?.detector })

/** The last byte of a loop entry's time (Redis TIME in ms, 6 bytes little-endian). */
async function timeByte7(): Promise<number> {
  const [s, us] = (await client().time()) as [number | string, number | string]
  const b = Buffer.alloc(6)
  b.writeUIntLE(Number(s) * 1000 + Math.floor(Number(us) / 1000), 0, 6)
  return b[5]!
}

describe('the loop count on Redis equals the memory store where a few fingerprints repeat', () => {
  it('finds the straddling fingerprint where an entry of its host holds it, not where an entry keeps one', async () => {
    const f = fingerprints(await timeByte7())
    const store = new RedisDetectorStore({ client: client(), prefix: `rs${++n}:` })
    const set = setOf(2, 3)
    const as = (x: Fp): CheckStep => {
      const step = checkStep(set, { prompt: 'any', isKey: false })!
      return { ...step, loop: { ...step.loop!, ...x } }
    }
    await store.check('key:s', as(f.host))
    await store.check('key:s', as(f.host))
    const ring = (await client().getBuffer(store.keys('key:s').loop))!
    // The straddling fingerprint's 16 bytes as an entry would keep them (redis.ts loopArg).
    const fp = Buffer.alloc(16)
    fp.writeUInt32LE(Number.parseInt(f.straddle.hash.slice(0, 8), 16), 0)
    fp.writeUInt32LE(Number.parseInt(f.straddle.hash.slice(8), 16), 4)
    fp.writeUInt32LE(f.straddle.hi, 8)
    fp.writeUInt32LE(f.straddle.lo, 12)
    expect(ring.indexOf(fp)).toBe(5)
    // (An entry: its time, the 16 bytes, a 5-byte stamp.)
    expect(ring.indexOf(fp, 6)).toBe(27 + 5)
  })

  it.each([
    [3, 1],
    [3, 2],
    [0, 3],
    [5, 4],
    [9, 5],
  ])(
    'nearDistance %i (seed %i): every check the same, each threshold from 2 to 30',
    async (distance, seed) => {
      const f = fingerprints(await timeByte7())
      const steps = sequence(seed, f, 110)
      const thresholds = Array.from({ length: 29 }, (_, i) => i + 2)
      const sets = thresholds.map((t) => setOf(t, distance))
      const as = (set: ReturnType<typeof setOf>, x: Fp): CheckStep => {
        const step = checkStep(set, { prompt: 'any', isKey: false })!
        return { ...step, loop: { ...step.loop!, ...x } }
      }
      const store = new RedisDetectorStore({ client: client(), prefix: `rr${++n}:` })
      const memory = new MemoryDetectorStore()
      const redis: ReturnType<typeof seen>[][] = thresholds.map(() => [])
      const mem: ReturnType<typeof seen>[][] = thresholds.map(() => [])
      for (const x of steps) {
        // One check per subject (threshold) a script call: each counts what its stored string holds.
        const answers = await Promise.all(sets.map((set, j) => store.check(`key:t${j}`, as(set, x))))
        for (const [j, set] of sets.entries()) {
          redis[j]!.push(seen(answers[j]!))
          mem[j]!.push(seen(memory.check(`key:t${j}`, as(set, x))))
        }
      }
      expect(redis).toEqual(mem)
      // Every threshold was reached (the counts shown).
      for (let j = 0; j < thresholds.length; j++) expect(mem[j]!.some((o) => o.raised.length > 0)).toBe(true)
    },
  )
})
