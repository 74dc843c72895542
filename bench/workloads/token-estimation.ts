import { countTokens, decode, encode } from 'gpt-tokenizer/encoding/o200k_base'
import { loadTokenEstimator } from '../adapters.js'
import { type Contender, contest } from '../harness/contest.js'
import { throughputRow } from '../harness/rows.js'
import type { BenchContext, Section, Workload } from '../harness/types.js'

const PROMPT_TOKENS = 4_000
const VARIANTS = 16
const MODEL = 'gpt-4o-mini'
const WORDS = (
  'the limiter charges each request for its prompt and completion tokens before the call and settles ' +
  'the difference after it; budgets reset hourly, bursts refill every second, and a client that keeps ' +
  'hitting 429 is blocked for a while. Résumé naïve café 東京 12,345.67 — (parenthesised) "quoted" ' +
  'snake_case camelCase https://example.com/path?q=1 #tag @user 3.14159 {"json": [1, 2, 3]}'
).split(' ')

/** A prompt of exactly PROMPT_TOKENS o200k tokens, different for each seed (a fixed PRNG, no Math.random). */
function prompt(seed: number): string {
  let x = seed * 2654435761 + 1
  const words: string[] = []
  for (let i = 0; i < PROMPT_TOKENS * 1.2; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    words.push(WORDS[x % WORDS.length]!)
  }
  return decode(encode(words.join(' ')).slice(0, PROMPT_TOKENS))
}

async function run(ctx: BenchContext): Promise<Section> {
  const prompts = Array.from({ length: VARIANTS }, (_, i) => prompt(i))
  const bodies = prompts.map((content) => ({
    model: MODEL,
    messages: [{ role: 'user', content }],
    max_tokens: 256,
  }))
  const estimator = await loadTokenEstimator(MODEL)
  const baseline: Contender = {
    name: 'gpt-tokenizer countTokens',
    async setup() {
      return { op: (k) => Promise.resolve(countTokens(prompts[k]!) > 0), teardown: async () => {} }
    },
  }
  const contenders: Contender[] = [baseline]
  if (estimator.ok) {
    contenders.unshift({
      name: 'gateway estimate',
      async setup() {
        return {
          op: (k) => Promise.resolve(estimator.value.estimate(bodies[k]!) > 0),
          teardown: async () => {},
        }
      },
    })
  }
  const measures = await contest(ctx, { id: 'token-estimation', contenders, inFlight: 1, keys: VARIANTS })
  const base = measures[measures.length - 1]!
  const sluice = estimator.ok ? measures[0] : undefined
  return {
    rows: [
      throughputRow('token-estimation', `token estimate, ${PROMPT_TOKENS}-token chat prompt`, [sluice], {
        unit: 'estimates/s',
        baseline: base,
        note: `one at a time; p50/p99 are ms per estimate; ${VARIANTS} different prompts in turn`,
      }),
    ],
    ...(estimator.ok
      ? {}
      : {
          unavailable: [
            { id: 'token-estimation', workload: 'gateway token estimate', reason: estimator.reason },
          ],
        }),
  }
}

export const tokenEstimation: Workload = {
  id: 'token-estimation',
  title: 'time to estimate the prompt tokens of a 4,000-token chat request (gateway) vs raw gpt-tokenizer',
  needsRedis: false,
  run,
}
