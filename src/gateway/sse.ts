import { isRecord } from './is-record.js'
/** Splits a server-sent-events byte stream into whole events, as they complete. */
export class SseSplitter {
  private readonly decoder = new TextDecoder()
  private buffer = ''

  /** Complete events in this chunk (each without its blank-line terminator, line ends as "\n"). */
  push(chunk: Uint8Array): string[] {
    this.buffer += this.decoder.decode(chunk, { stream: true })
    if (this.buffer.includes('\r')) this.buffer = this.buffer.replace(/\r\n?/g, '\n')
    const events: string[] = []
    let end = this.buffer.indexOf('\n\n')
    while (end !== -1) {
      const event = this.buffer.slice(0, end)
      if (event !== '') events.push(event)
      this.buffer = this.buffer.slice(end + 2)
      end = this.buffer.indexOf('\n\n')
    }
    return events
  }

  /** What is left when the stream ends (an event the upstream never terminated). */
  end(): string[] {
    this.buffer += this.decoder.decode()
    const rest = this.buffer.replace(/\n+$/, '')
    this.buffer = ''
    return rest === '' ? [] : [rest]
  }
}

export interface SseEvent {
  /** The event as received (forwarded unchanged unless rewritten). */
  raw: string
  /** The `event:` field, if any. */
  type: string | undefined
  /** The `data:` lines joined with "\n", or undefined when there are none. */
  data: string | undefined
}

export function parseSseEvent(raw: string): SseEvent {
  let type: string | undefined
  let data: string | undefined
  for (const line of raw.split('\n')) {
    if (line.startsWith('data:')) {
      const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5)
      data = data === undefined ? value : `${data}\n${value}`
    } else if (line.startsWith('event:')) {
      type = line.slice(line.charCodeAt(6) === 32 ? 7 : 6)
    }
  }
  return { raw, type, data }
}

/** The event with its data replaced, other fields (event:, id:) kept. */
export function withData(event: SseEvent, data: string): string {
  const other = event.raw.split('\n').filter((line) => !line.startsWith('data:'))
  return [...other, `data: ${data}`].join('\n')
}

/** An event's data as a JSON object, or undefined when it is not one (a stream passes it on as it is). */
export function jsonObject(data: string): Record<string, unknown> | undefined {
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return undefined
  }
  return isRecord(value) ? value : undefined
}
