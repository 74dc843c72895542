import { Agent, fetch } from 'undici'

/** One server-sent event (or comment) as read off the wire. */
export interface SseFrame {
  id?: string
  event?: string
  data?: string
  retry?: string
  comments: string[]
}

/** An open /events/stream: frames as they arrive, read with the Authorization header (never a URL token). */
export interface SseReader {
  status: number
  headers: Headers
  /** The next frame, or undefined when the stream ended; rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<SseFrame | undefined>
  /** Frames until one matches (comments and others are collected on the way). */
  until(match: (frame: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame[]>
  close(): void
}

export async function openSse(url: string, headers: Record<string, string>): Promise<SseReader> {
  const controller = new AbortController()
  // A connection of its own, closed with the stream: nothing is left in a shared pool.
  const dispatcher = new Agent({ connections: 1 })
  const response = await fetch(url, { headers, signal: controller.signal, dispatcher })
  const reader = response.body?.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let ended = false
  const frames: SseFrame[] = []

  const parse = () => {
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const frame: SseFrame = { comments: [] }
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) frame.comments.push(line.slice(1).trim())
        else {
          const colon = line.indexOf(':')
          const field = line.slice(0, colon)
          const value = line.slice(colon + 1).replace(/^ /, '')
          if (field === 'id' || field === 'event' || field === 'retry') frame[field] = value
          else if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`
        }
      }
      frames.push(frame)
    }
  }

  const next = async (timeoutMs = 10_000): Promise<SseFrame | undefined> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      parse()
      if (frames.length > 0) return frames.shift()
      if (ended || reader === undefined) return undefined
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no server-sent event within ${timeoutMs} ms`)
      let timer: NodeJS.Timeout | undefined
      const chunk = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no server-sent event within ${timeoutMs} ms`)), left)
        }),
      ]).finally(() => clearTimeout(timer))
      if (chunk.done) ended = true
      else buffer += decoder.decode(chunk.value, { stream: true })
    }
  }

  return {
    status: response.status,
    headers: response.headers as unknown as Headers,
    next,
    async until(match, timeoutMs = 10_000) {
      const seen: SseFrame[] = []
      for (;;) {
        const frame = await next(timeoutMs)
        if (frame === undefined)
          throw new Error(`the stream ended before the frame looked for: ${JSON.stringify(seen)}`)
        seen.push(frame)
        if (match(frame)) return seen
      }
    },
    close: () => {
      controller.abort()
      void dispatcher.destroy().catch(() => {})
    },
  }
}
