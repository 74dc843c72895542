/**
 * A worker thread that counts tokens for count-pool.ts, so that counting a large prompt never holds
 * the gateway's event loop. One message in ({ id, encoding, texts }), one out ({ id, tokens }).
 */
import { parentPort } from 'node:worker_threads'
import type { EncodingName } from './config/schema.js'
import { encoderFor } from './tokens.js'

export interface CountJob {
  id: number
  encoding: EncodingName
  texts: string[]
}

export type CountAnswer = { id: number; tokens: number } | { id: number; error: string }

const port = parentPort
if (port) {
  port.on('message', (job: CountJob) => {
    encoderFor(job.encoding).then(
      (enc) => {
        let tokens = 0
        for (const text of job.texts) tokens += enc.count(text)
        port.postMessage({ id: job.id, tokens } satisfies CountAnswer)
      },
      (error: unknown) => port.postMessage({ id: job.id, error: String(error) } satisfies CountAnswer),
    )
  })
}
