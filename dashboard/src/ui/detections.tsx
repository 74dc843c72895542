/**
 * One detection as a table row, and the operator's actions on its subject (clear, allow-list).
 * Every field is shown as the API gives it, without knowing the detector: a new kind needs no
 * change here. Subjects, messages and addresses come from clients: always text, never markup.
 */
import { useState } from 'preact/hooks'
import { post, seg } from '../api'
import { ago, fullTime } from '../format'
import { subjectHref } from '../router'
import type { Detection } from '../types'
import { Badge } from './common'
import { Confirm } from './Dialog'
import { Select } from './fields'

/** What a level did (or, in shadow mode, would have done); a level unknown here is shown as it is. */
const DONE: Record<string, string> = { alert: 'alerted', throttle: 'throttled', block: 'blocked' }
export const actionOf = (d: Detection) => (d.shadow ? `would ${d.level}` : (DONE[d.level] ?? d.level))

const STATE_TONE = { active: 'bad', cleared: 'ok', expired: 'muted' } as const
const SHOWN_ADDRESSES = 3

function Addresses(props: { list: string[] | undefined }) {
  const list = props.list ?? []
  if (list.length === 0) return <>—</>
  if (list.length <= SHOWN_ADDRESSES) return <span class="mono small">{list.join(', ')}</span>
  return (
    <details>
      <summary>
        <span class="mono small">{list.slice(0, SHOWN_ADDRESSES).join(', ')}</span> and{' '}
        {list.length - SHOWN_ADDRESSES} more
      </summary>
      <ul class="plain mono small">
        {list.map((a) => (
          <li key={a}>{a}</li>
        ))}
      </ul>
    </details>
  )
}

function State(props: { d: Detection }) {
  const { d } = props
  return (
    <>
      <Badge tone={STATE_TONE[d.state] ?? 'muted'}>{d.state}</Badge>
      {d.state === 'active' && (
        <div class="small muted">
          {d.until === null ? 'until cleared' : <span title={fullTime(d.until)}>ends {ago(d.until)}</span>}
        </div>
      )}
      {d.cleared && (
        <div class="small muted" title={fullTime(d.cleared.at)}>
          by {d.cleared.by}, {ago(d.cleared.at)}
        </div>
      )}
      {d.allowListed !== false && (
        <div>
          <Badge tone="info">
            <span title={d.allowListed === true ? 'for good' : fullTime(d.allowListed)}>allow-listed</span>
          </Badge>
        </div>
      )}
    </>
  )
}

export function DetectionRow(props: {
  d: Detection
  busy: boolean
  onClear: (d: Detection) => void
  onAllow: (d: Detection) => void
}) {
  const { d } = props
  const link = subjectHref(d.subject)
  return (
    <tr class={d.state === 'active' ? 'row-active' : undefined}>
      <td title={fullTime(d.at)}>
        <time dateTime={d.at}>{ago(d.at)}</time>
      </td>
      <td>{d.detector}</td>
      <td class="cell-subject">
        {link ? <a href={link}>{d.subject}</a> : <span class="mono">{d.subject}</span>}
        {d.tier && <div class="small muted">tier {d.tier}</div>}
      </td>
      <td>
        <Badge tone={d.shadow ? 'muted' : d.level === 'alert' ? 'warn' : 'bad'}>{actionOf(d)}</Badge>
        {d.shadow && <div class="small muted">shadow mode</div>}
        {d.value !== undefined && d.threshold !== undefined && (
          <div class="small muted">
            {d.value} (threshold {d.threshold})
          </div>
        )}
      </td>
      <td class="cell-message">{d.message ?? '—'}</td>
      <td>
        <Addresses list={d.addresses} />
      </td>
      <td>
        <State d={d} />
      </td>
      <td>
        <div class="buttons">
          {d.state === 'active' && (
            <button
              type="button"
              disabled={props.busy}
              aria-label={`Clear ${d.detector} for ${d.subject}`}
              onClick={() => props.onClear(d)}
            >
              Clear
            </button>
          )}
          {d.allowListed === false && (
            <button
              type="button"
              disabled={props.busy}
              aria-label={`Allow-list ${d.subject}`}
              onClick={() => props.onAllow(d)}
            >
              Allow-list
            </button>
          )}
        </div>
      </td>
    </tr>
  )
}

const FOR = [
  { value: '3600000', text: 'For 1 hour' },
  { value: '86400000', text: 'For 1 day' },
  { value: '604800000', text: 'For 7 days' },
  { value: '', text: 'For good (until lifted)' },
]

/** Allow-lists a subject with the detectors, after the operator confirms for how long. */
export function AllowDialog(props: { subject: string; onClose: () => void; onDone: () => void }) {
  const [forMs, setForMs] = useState('3600000')
  return (
    <Confirm
      title="Allow-list a subject"
      action="Allow-list"
      onClose={props.onClose}
      onConfirm={async () => {
        await post(`detections/${seg(props.subject)}/allow`, forMs === '' ? {} : { forMs: Number(forMs) })
        props.onDone()
      }}
    >
      <p>
        The detectors leave <strong class="mono">{props.subject}</strong> alone on every gateway: what it
        sends is not counted, and its standing flags stop refusing it. Its rate limits and budgets still
        apply.
      </p>
      <Select label="How long" value={forMs} onChange={setForMs} options={FOR} />
    </Confirm>
  )
}

/** Lowers one detector's flags of a subject (all of the subject's for the gateway-wide count). */
export const clearDetection = (d: Detection) =>
  post(`detections/${seg(d.subject)}/clear`, d.subject === 'gateway' ? {} : { detector: d.detector })
