/** The alerts feed as it happens: 80 % alerts, blocks, spent budgets, store outages, webhook deliveries, abuse detections. */
import { useEffect, useState } from 'preact/hooks'
import { count } from '../format'
import { markSeen, useFeed } from '../stream'
import type { AdminEvent } from '../types'
import { PageTitle, Section } from '../ui/common'
import { EventList, FeedStatus } from '../ui/events'
import { Select } from '../ui/fields'

const TYPES = [
  { value: '', text: 'All events' },
  { value: 'alert', text: '80 % alerts' },
  { value: 'block', text: 'Blocks' },
  { value: 'budget', text: 'Budgets spent' },
  { value: 'store', text: 'Store outages' },
  { value: 'webhook', text: 'Webhook deliveries' },
  { value: 'detection', text: 'Abuse detections' },
]

export function Alerts() {
  const feed = useFeed()
  const [type, setType] = useState('')
  // Looking at the page is seeing the events: the count in the menu goes back to zero.
  useEffect(() => markSeen(), [feed.events.length])
  const events = type === '' ? feed.events : feed.events.filter((e: AdminEvent) => e.type === type)
  return (
    <>
      <div class="page-head">
        <PageTitle text="Alerts">Alerts</PageTitle>
        <FeedStatus state={feed.state} />
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <Select label="Show" value={type} onChange={setType} options={TYPES} />
      </form>
      {feed.missed > 0 && (
        <p class="warning">
          {count(feed.missed)} event{feed.missed === 1 ? ' was' : 's were'} lost while this page was away: the
          server keeps only the latest.
        </p>
      )}
      <Section
        title={`${type === '' ? 'Events' : TYPES.find((t) => t.value === type)!.text} (${events.length})`}
      >
        <EventList
          events={events}
          all={feed.events}
          empty={
            feed.state === 'unavailable'
              ? 'This server has no events feed: it is filled by the gateway.'
              : 'Nothing yet.'
          }
        />
      </Section>
    </>
  )
}
