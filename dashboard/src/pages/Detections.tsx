/**
 * What the abuse detectors found, newest first, as /admin/v1/detections lists it: filtered by
 * kind, subject, state and mode, a page at a time, read again every few seconds; clear a
 * detector's flags or allow-list a subject from the row.
 */
import { useEffect, useState } from 'preact/hooks'
import { ApiError, get } from '../api'
import { usePoll } from '../live'
import type { Detection, DetectionList } from '../types'
import { ErrorNote, Loading, Pager, PageTitle, TableWrap } from '../ui/common'
import { AllowDialog, clearDetection, DetectionRow } from '../ui/detections'
import { Select } from '../ui/fields'

const PAGE = 25

const STATES = [
  { value: '', text: 'Any' },
  { value: 'active', text: 'Active' },
  { value: 'cleared', text: 'Cleared' },
  { value: 'expired', text: 'Expired' },
]
const MODES = [
  { value: '', text: 'Any' },
  { value: 'false', text: 'Acting' },
  { value: 'true', text: 'Shadow (report only)' },
]

export function Detections() {
  const [detector, setDetector] = useState('')
  const [subject, setSubject] = useState('')
  const [state, setState] = useState('')
  const [shadow, setShadow] = useState('')
  const [offset, setOffset] = useState(0)
  // The kinds met so far: the filter offers them without the page knowing any detector by name.
  const [kinds, setKinds] = useState<string[]>([])
  const [busy, setBusy] = useState<string | undefined>(undefined)
  const [actionError, setActionError] = useState<{ what: string; error: unknown } | undefined>(undefined)
  const [allowing, setAllowing] = useState<string | undefined>(undefined)

  const list = usePoll(
    (signal) =>
      get<DetectionList>(
        'detections',
        {
          limit: PAGE,
          offset,
          detector: detector || undefined,
          subject: subject.trim() || undefined,
          state: state || undefined,
          shadow: shadow || undefined,
        },
        signal,
      ),
    [detector, subject, state, shadow, offset],
  )
  useEffect(() => {
    const met = list.data?.items.map((d) => d.detector) ?? []
    if (met.some((k) => !kinds.includes(k))) setKinds([...new Set([...kinds, ...met])].sort())
  }, [list.data])

  const filter =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      set(v)
      setOffset(0)
    }
  const clear = async (d: Detection) => {
    setBusy(d.subject)
    setActionError(undefined)
    try {
      await clearDetection(d)
      list.refresh()
    } catch (error) {
      setActionError({ what: `Clearing ${d.detector} for ${d.subject}`, error })
    } finally {
      setBusy(undefined)
    }
  }

  const off = list.error instanceof ApiError && list.error.status === 501
  const data = list.data
  return (
    <>
      <div class="page-head">
        <PageTitle text="Detections">Detections</PageTitle>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <Select
          label="Kind"
          value={detector}
          onChange={filter(setDetector)}
          options={[
            { value: '', text: 'Any' },
            ...[...new Set([...kinds, ...(detector ? [detector] : [])])].map((k) => ({ value: k, text: k })),
          ]}
        />
        <div class="field">
          <label for="detection-subject">Subject (exact)</label>
          <input
            id="detection-subject"
            type="search"
            value={subject}
            placeholder="key:…, user:…, ip:… or gateway"
            onInput={(e) => filter(setSubject)(e.currentTarget.value)}
          />
        </div>
        <Select label="State" value={state} onChange={filter(setState)} options={STATES} />
        <Select label="Mode" value={shadow} onChange={filter(setShadow)} options={MODES} />
      </form>
      {actionError && <ErrorNote error={actionError.error} what={actionError.what} />}
      {off ? (
        <p class="muted">
          This server runs no abuse detectors: turn them on with <code>detectors</code> in sluice.yaml (see
          docs/abuse.md).
        </p>
      ) : (
        <ErrorNote error={list.error} what="Detections" />
      )}
      {off ? null : data === undefined ? (
        list.error ? null : (
          <Loading what="detections" />
        )
      ) : data.items.length === 0 ? (
        <p class="muted">
          {data.total === 0 && offset === 0 ? 'No detection matches.' : 'Nothing on this page.'}
        </p>
      ) : (
        <>
          <TableWrap label="Detections">
            <table class="detections">
              <thead>
                <tr>
                  <th scope="col">Raised</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Subject</th>
                  <th scope="col">Level</th>
                  <th scope="col">Message</th>
                  <th scope="col">Addresses</th>
                  <th scope="col">State</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((d) => (
                  <DetectionRow
                    key={`${d.at}\0${d.subject}\0${d.detector}\0${d.level}`}
                    d={d}
                    busy={busy === d.subject}
                    onClear={clear}
                    onAllow={(x) => {
                      setActionError(undefined)
                      setAllowing(x.subject)
                    }}
                  />
                ))}
              </tbody>
            </table>
          </TableWrap>
          <Pager
            label="Pages of detections"
            offset={offset}
            size={PAGE}
            total={data.total}
            onOffset={setOffset}
          />
        </>
      )}
      {allowing !== undefined && (
        <AllowDialog
          subject={allowing}
          onClose={() => setAllowing(undefined)}
          onDone={() => {
            setAllowing(undefined)
            list.refresh()
          }}
        />
      )}
    </>
  )
}
