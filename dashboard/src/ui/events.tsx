/** Events (alerts, blocks, budgets, store outages, webhooks) as a list, with each one's webhook delivery. */
import { ago, fullTime } from '../format'
import { subjectHref } from '../router'
import type { FeedState } from '../stream'
import type { AdminEvent } from '../types'
import { Badge } from './common'

const TYPE_TEXT: Record<AdminEvent['type'], string> = {
  alert: '80 % alert',
  block: 'block',
  budget: 'budget spent',
  store: 'store',
  webhook: 'webhook',
  detection: 'abuse',
}
const SEVERITY_TONE = { info: 'info', warning: 'warn', critical: 'bad' } as const

function delivery(event: AdminEvent, all: AdminEvent[]): string | undefined {
  if (event.type !== 'alert' && event.type !== 'block') return undefined
  const result = all.find((e) => e.type === 'webhook' && e.data.ref === event.id)
  if (result === undefined) return undefined
  const attempts = Number(result.data.attempts ?? 0)
  const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`
  return result.data.status === 'delivered'
    ? `Webhook delivered (${tries})`
    : `Webhook failed after ${tries}: ${String(result.data.error ?? 'unknown error')}`
}

export function EventList(props: { events: AdminEvent[]; all?: AdminEvent[]; empty?: string }) {
  const all = props.all ?? props.events
  if (props.events.length === 0) return <p class="muted">{props.empty ?? 'No events yet.'}</p>
  return (
    <ol class="events">
      {props.events.map((e) => {
        const link = subjectHref(e.subject)
        const hook = delivery(e, all)
        return (
          <li key={e.id} class={`event sev-${e.severity}`}>
            <div class="event-head">
              <Badge tone={SEVERITY_TONE[e.severity]}>{TYPE_TEXT[e.type]}</Badge>
              <time dateTime={e.time} title={fullTime(e.time)}>
                {ago(e.time)}
              </time>
              {e.subject && (link ? <a href={link}>{e.subject}</a> : <span class="mono">{e.subject}</span>)}
            </div>
            <p class="event-message">{e.message}</p>
            {hook && (
              <p class={`event-hook ${hook.startsWith('Webhook delivered') ? 'ok' : 'bad'}`}>{hook}</p>
            )}
          </li>
        )
      })}
    </ol>
  )
}

export function FeedStatus(props: { state: FeedState }) {
  const text: Record<FeedState, [string, 'ok' | 'warn' | 'bad' | 'muted']> = {
    live: ['Live', 'ok'],
    connecting: ['Connecting…', 'muted'],
    reconnecting: ['Reconnecting…', 'warn'],
    unavailable: ['No events feed on this server', 'muted'],
    stopped: ['Stopped', 'muted'],
  }
  const [label, tone] = text[props.state]
  return (
    <span class="feed-status" role="status">
      <Badge tone={tone}>{label}</Badge>
    </span>
  )
}
