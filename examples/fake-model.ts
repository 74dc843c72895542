/**
 * A stand-in for a model call, so the examples run with no network and no API key: it answers
 * with a fixed text and OpenAI-style usage counted roughly from the prompt.
 */
export interface ChatRequest {
  model?: string
  messages?: { role: string; content: string }[]
  max_tokens?: number
}

/** A rough token estimate (4 characters a token) of the prompt plus the answer it may get. */
export function estimateTokens(body: unknown): number {
  const req = (body ?? {}) as ChatRequest
  const prompt = (req.messages ?? []).reduce((n, m) => n + String(m.content ?? '').length, 0)
  return Math.ceil(prompt / 4) + (req.max_tokens ?? 64)
}

export async function fakeCompletion(body: unknown) {
  const req = (body ?? {}) as ChatRequest
  await new Promise((r) => setTimeout(r, 20))
  const prompt = Math.ceil((req.messages ?? []).reduce((n, m) => n + String(m.content ?? '').length, 0) / 4)
  const completion = 12
  return {
    id: `chatcmpl-${Date.now().toString(36)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: req.model ?? 'demo',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'Hello from the example model.' },
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  }
}

export function banner(framework: string, port: number, key: string): void {
  const url = `http://localhost:${port}`
  console.log(`sluice + ${framework} listening on ${url}`)
  console.log(`demo API key (service tier): ${key}`)
  console.log('try:')
  console.log(`  curl -i ${url}/hello                      # anonymous: 20 requests/hour per IP`)
  console.log(`  curl -i -H 'x-api-key: ${key}' ${url}/hello`)
  console.log(
    `  curl -i ${url}/v1/chat/completions -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":"hi"}]}'`,
  )
}
