/**
 * redis-server's instructions per gateway call for the detector script alone, counted (not timed):
 * turns of CHECKS checks and CHECKS records of one subject (the `detectors` row's prompts, key and
 * address; every detector at its defaults, the spend floor out of reach) issued in one event-loop
 * turn through a RedisDetectorStore (`recordLingerMs: 0`: one script call a turn), into a private
 * `valgrind --tool=cachegrind --cache-sim=no redis-server` (bench/harness/cachegrind-redis.ts).
 * Two fresh servers a count, one of LOW turns and one of HIGH: (total of HIGH − total of LOW) ÷
 * ((HIGH − LOW) × CHECKS) is one gateway call, start-up and loading cancelled out. Unlike
 * bench/detector-commands.ts --instructions (the real gateway, whose script calls carry as many
 * steps as requests happen to arrive together), every run sends the same steps: runs of one
 * checkout spread over ~1–2k.
 *
 *   npx tsx bench/detector-script-instructions.ts [--base <checkout>] [--repeat 3]
 *       [--loop off] [--near <bits>] [--prompts <k>] [--checks 16] [--low 20] [--high 80]
 *
 * `--base <dir>`: another checkout's detector store too (its src/, with a node_modules), counted
 * in turn with this one, base first, every repeat. `--loop off`: the loop detector off;
 * `--near <bits>`: its nearDistance; `--prompts <k>`: k prompts over and over (a loop: each check
 * then matches earlier ones, of its call too, and the detector raises its levels). Each count also
 * says how the checks of its HIGH run were answered (refused by which detector at which level):
 * a loop throttled or blocked still has every check observe and count in Redis.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { startCountedRedis } from './harness/cachegrind-redis.js'
import { DETECTORS } from './harness/detector-gateway.js'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    repeat: { type: 'string', default: '1' },
    loop: { type: 'string', default: 'on' },
    near: { type: 'string' },
    checks: { type: 'string', default: '16' },
    low: { type: 'string', default: '20' },
    high: { type: 'string', default: '80' },
    prompts: { type: 'string' },
  },
})
const CHECKS = Number(values.checks)
const LOW = Number(values.low)
const HIGH = Number(values.high)
const options = {
  ...DETECTORS,
  ...(values.loop === 'off'
    ? { loop: false }
    : values.near !== undefined && { loop: { nearDistance: Number(values.near) } }),
}
const PROMPTS = values.prompts === undefined ? Number.POSITIVE_INFINITY : Number(values.prompts)
const prompt = (i: number) => {
  const n = i % PROMPTS
  return `gpt-4o-mini\nQuestion ${n}: say hello in ${n % 97} words, please.`
}

interface Checkout {
  name: string
  // biome-ignore lint/suspicious/noExplicitAny: modules of another checkout, typed as its own
  core: any
  // biome-ignore lint/suspicious/noExplicitAny: as above
  Store: any
}

async function checkout(name: string, dir: string): Promise<Checkout> {
  const at = (file: string) => pathToFileURL(join(dir, file)).href
  const core = await import(at('src/core/detectors/index.ts'))
  const { RedisDetectorStore: Store } = await import(at('src/store/detectors/redis.ts'))
  return { name, core, Store }
}

/** How the checks of a run were answered: 'passed' or '<detector> level <n>', and how many. */
type Answers = Map<string, number>

/** Every instruction a fresh counted redis-server ran for `turns` turns of the checkout's steps. */
async function total(c: Checkout, turns: number, dir: string, answers?: Answers): Promise<number> {
  const server = await startCountedRedis(dir, `${c.name}-${turns}`)
  const client = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: null })
  try {
    const set = c.core.detectorSetFor(c.core.resolveDetectors(options), 'service', 'bench')
    const store = new c.Store({ client, prefix: 'bench:', recordLingerMs: 0 })
    let n = 0
    for (let t = 0; t < turns; t++) {
      const steps: Promise<unknown>[] = []
      for (let i = 0; i < CHECKS; i++) {
        const step = c.core.checkStep(set, { prompt: prompt(n++), address: '127.0.0.1', isKey: true })
        steps.push(
          store.check('key:bench', step).then((o: { refused?: { detector: string; level: number } }) => {
            const what = o.refused === undefined ? 'passed' : `${o.refused.detector} level ${o.refused.level}`
            answers?.set(what, (answers.get(what) ?? 0) + 1)
          }),
        )
      }
      for (let i = 0; i < CHECKS; i++) {
        steps.push(store.record('key:bench', c.core.recordStep(set, { tokens: 30, usd: 0.0001 }, 0.001)))
      }
      await Promise.all(steps)
    }
  } finally {
    client.disconnect()
  }
  return server.stop()
}

async function perCall(c: Checkout, dir: string): Promise<number> {
  const answers: Answers = new Map()
  const high = await total(c, HIGH, dir, answers)
  const all = [...answers.values()].reduce((a, b) => a + b, 0)
  console.log(
    `${c.name}: checks of the run of ${HIGH} turns: ${[...answers].map(([k, v]) => `${k} ${v}`).join(', ')} (of ${all})`,
  )
  const low = await total(c, LOW, dir)
  return (high - low) / ((HIGH - LOW) * CHECKS)
}

const checkouts = [await checkout('this', resolve(import.meta.dirname, '..'))]
if (values.base !== undefined) checkouts.unshift(await checkout('base', resolve(values.base)))
const dir = mkdtempSync(join(tmpdir(), 'sluice-detector-script-'))
const counts = new Map<string, number[]>(checkouts.map((c) => [c.name, []]))
try {
  for (let r = 0; r < Number(values.repeat); r++) {
    for (const c of checkouts) {
      const k = await perCall(c, dir)
      counts.get(c.name)!.push(k)
      console.log(`${c.name}: ${(k / 1000).toFixed(2)}k redis-server instructions a gateway call`)
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
const what = `turns of ${CHECKS} checks + ${CHECKS} records, loop ${values.loop}${values.near === undefined ? '' : `, nearDistance ${values.near}`}${values.prompts === undefined ? '' : `, ${values.prompts} prompts`}`
for (const [name, ks] of counts) {
  const mean = ks.reduce((a, b) => a + b, 0) / ks.length
  console.log(
    `${name} (${what}): ${ks.map((k) => `${(k / 1000).toFixed(2)}k`).join(', ')}; mean ${(mean / 1000).toFixed(2)}k`,
  )
}
