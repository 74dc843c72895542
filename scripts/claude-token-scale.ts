/**
 * Measures how many tokens a reference Claude tokenizer makes of a text per o200k_base token, over
 * the corpus in test/fixtures/claude-corpus/, and prints the distribution per kind and overall.
 * CLAUDE_TOKEN_SCALE (src/gateway/dialects/anthropic-prompt.ts) is chosen from these figures and
 * the published ones in docs/gateway.md ("How the Claude estimate is calibrated").
 *
 * The reference is `@anthropic-ai/tokenizer` (a devDependency): the BPE Anthropic published, for
 * Claude models before Claude 3. Anthropic ships no tokenizer for later models, so this is the
 * closest count that can be made here without calling its API.
 *
 *   npx tsx scripts/claude-token-scale.ts [--json]
 */
import { getTokenizer } from '@anthropic-ai/tokenizer'
import {
  CLAUDE_NEW_TOKEN_SCALE,
  CLAUDE_TOKEN_SCALE,
  scriptTokens,
} from '../src/gateway/dialects/anthropic-prompt.js'
import { encoderFor } from '../src/gateway/tokens.js'
import { claudeCorpus } from '../test/fixtures/claude-corpus.js'

interface Row {
  kind: string
  name: string
  chars: number
  o200k: number
  claude: number
  ratio: number
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}

function summary(rows: Row[]) {
  const ratios = rows.map((r) => r.ratio).sort((a, b) => a - b)
  const o200k = rows.reduce((s, r) => s + r.o200k, 0)
  const claude = rows.reduce((s, r) => s + r.claude, 0)
  return {
    samples: rows.length,
    pooled: claude / o200k,
    min: ratios[0]!,
    p50: quantile(ratios, 0.5),
    p95: quantile(ratios, 0.95),
    p99: quantile(ratios, 0.99),
    max: ratios[ratios.length - 1]!,
  }
}

const fmt = (n: number) => n.toFixed(3)

async function main() {
  const o200k = await encoderFor('o200k_base')
  const samples = claudeCorpus()
  // What the package's countTokens does, with one tokenizer instead of one per call.
  const tokenizer = getTokenizer()
  const claudeTokens = (text: string) => tokenizer.encode(text.normalize('NFKC'), 'all').length
  const rows: Row[] = samples.map((s) => {
    const a = o200k.count(s.text)
    const c = claudeTokens(s.text)
    return { kind: s.kind, name: s.name, chars: s.text.length, o200k: a, claude: c, ratio: c / a }
  })
  tokenizer.free()
  const byKind = new Map<string, Row[]>()
  for (const r of rows) byKind.set(r.kind, [...(byKind.get(r.kind) ?? []), r])
  // Prose by language: the file name after `prose-`.
  const byLanguage = new Map<string, Row[]>()
  for (const r of rows.filter((r) => r.kind === 'prose')) {
    const lang = r.name.replace(/^prose-/, '').replace(/#.*$/, '')
    byLanguage.set(lang, [...(byLanguage.get(lang) ?? []), r])
  }
  const all = summary(rows)
  if (process.argv.includes('--json')) {
    console.log(
      JSON.stringify(
        {
          all,
          byKind: Object.fromEntries([...byKind].map(([k, v]) => [k, summary(v)])),
          byLanguage: Object.fromEntries([...byLanguage].map(([k, v]) => [k, summary(v)])),
          rows,
        },
        null,
        2,
      ),
    )
    return
  }
  const line = (label: string, s: ReturnType<typeof summary>) =>
    console.log(
      `${label.padEnd(16)} ${String(s.samples).padStart(4)}  pooled ${fmt(s.pooled)}  min ${fmt(s.min)}  p50 ${fmt(s.p50)}  p95 ${fmt(s.p95)}  p99 ${fmt(s.p99)}  max ${fmt(s.max)}`,
    )
  console.log('Claude tokens (@anthropic-ai/tokenizer) per o200k_base token, per sample\n')
  console.log('by kind')
  for (const [kind, v] of [...byKind].sort()) line(kind, summary(v))
  console.log('\nprose by language')
  for (const [lang, v] of [...byLanguage].sort()) line(lang, summary(v))
  console.log('')
  line('all', all)
  const under = rows.filter((r) => r.ratio > CLAUDE_TOKEN_SCALE)
  console.log(
    `\nratio above CLAUDE_TOKEN_SCALE = ${CLAUDE_TOKEN_SCALE}: ${under.length} of ${rows.length} samples` +
      (under.length ? ` (${under.map((r) => `${r.name} ${fmt(r.ratio)}`).join(', ')})` : ''),
  )
  // The estimate of a text as the gateway makes it (scale × o200k + tokens by script), framing left
  // out, per reference token.
  for (const scale of [CLAUDE_TOKEN_SCALE, CLAUDE_NEW_TOKEN_SCALE]) {
    const cover = rows
      .map((r, i) => {
        const text = samples[i]!.text
        return { name: r.name, cover: (Math.ceil(r.o200k * scale) + scriptTokens(text)) / r.claude }
      })
      .sort((a, b) => a.cover - b.cover)
    const q = (p: number) =>
      fmt(
        quantile(
          cover.map((c) => c.cover),
          p,
        ),
      )
    console.log(
      `estimate / reference at scale ${scale}: min ${fmt(cover[0]!.cover)} (${cover[0]!.name})  p1 ${q(0.01)}  p5 ${q(0.05)}  p50 ${q(0.5)}  p95 ${q(0.95)}  max ${fmt(cover[cover.length - 1]!.cover)} (${cover[cover.length - 1]!.name})`,
    )
  }
}

await main()
