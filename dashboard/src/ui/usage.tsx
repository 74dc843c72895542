/** Usage over time (plots) and the ledger's recent rows, for everything or one key or team. */
import { useState } from 'preact/hooks'
import { get } from '../api'
import { clock, count, fullTime, millis, usd } from '../format'
import { usePoll } from '../live'
import { href } from '../router'
import type { LedgerPage, Series } from '../types'
import { Badge, ErrorNote, Loading, Section, TableWrap, Toggle } from './common'
import { Plot } from './Plot'

export type Range = 'hour' | 'day'
export const RANGES: { value: Range; text: string }[] = [
  { value: 'hour', text: 'Last hour' },
  { value: 'day', text: 'Last day' },
]
/** A minute a point over the hour; five over the day (288 points, still every spike). */
export const RANGE_QUERY: Record<Range, { ms: number; step: string; per: string }> = {
  hour: { ms: 3_600_000, step: '1m', per: 'per minute' },
  day: { ms: 86_400_000, step: '5m', per: 'per 5 minutes' },
}

export const COLORS = { served: '#2f7d4f', refused: '#c2410c', tokens: '#1d5fa8', usd: '#7c3aed' }

export function useSeries(range: Range, filter: Record<string, string | undefined>) {
  const { ms, step } = RANGE_QUERY[range]
  return usePoll(
    (signal) => get<Series>('usage/series', { from: Date.now() - ms, step, ...filter }, signal),
    [range, JSON.stringify(filter)],
  )
}

/** Requests (served / refused), tokens and dollars over the range, as three plots. */
export function UsagePlots(props: { series: Series | undefined; range: Range; error?: unknown }) {
  const { series, range } = props
  if (series === undefined)
    return props.error ? <ErrorNote error={props.error} what="Usage" /> : <Loading what="usage" />
  const per = RANGE_QUERY[range].per
  const times = series.points.map((p) => p.time)
  return (
    <div class="plots">
      <Plot
        title={`Requests ${per}`}
        times={times}
        format={count}
        series={[
          { label: 'served', color: COLORS.served, values: series.points.map((p) => p.served), fill: true },
          { label: 'refused', color: COLORS.refused, values: series.points.map((p) => p.refused) },
        ]}
      />
      <Plot
        title={`Tokens ${per}`}
        times={times}
        format={count}
        series={[
          { label: 'tokens', color: COLORS.tokens, values: series.points.map((p) => p.tokens), fill: true },
        ]}
      />
      <Plot
        title={`Spend ${per}`}
        times={times}
        format={usd}
        series={[{ label: 'USD', color: COLORS.usd, values: series.points.map((p) => p.usd), fill: true }]}
      />
    </div>
  )
}

type RowFilter = 'all' | 'served' | 'refused'
const ROW_FILTERS: { value: RowFilter; text: string }[] = [
  { value: 'all', text: 'All' },
  { value: 'served', text: 'Served' },
  { value: 'refused', text: '429s' },
]

function outcomeTone(outcome: string): 'ok' | 'warn' | 'bad' | 'muted' {
  if (outcome === 'ok') return 'ok'
  if (outcome === 'rate_limited' || outcome === 'blocked') return 'warn'
  return outcome === 'unauthenticated' || outcome === 'denied' ? 'muted' : 'bad'
}

/** The latest ledger rows of a key or team, served and refused, with the reason. */
export function LedgerRows(props: { filter: Record<string, string>; showKey?: boolean }) {
  const [which, setWhich] = useState<RowFilter>('all')
  const extra = which === 'served' ? { outcome: 'ok' } : which === 'refused' ? { status: 429 } : {}
  const rows = usePoll(
    (signal) => get<LedgerPage>('ledger', { ...props.filter, ...extra, limit: 15 }, signal),
    [which, JSON.stringify(props.filter)],
  )
  return (
    <Section
      title="Recent requests"
      actions={<Toggle label="Which requests" value={which} options={ROW_FILTERS} onChange={setWhich} />}
    >
      {rows.data === undefined ? (
        rows.error ? (
          <ErrorNote error={rows.error} what="Ledger" />
        ) : (
          <Loading what="requests" />
        )
      ) : rows.data.items.length === 0 ? (
        <p class="muted">No requests recorded{which === 'all' ? '' : ' of this kind'} yet.</p>
      ) : (
        <TableWrap label="Recent requests">
          <table>
            <thead>
              <tr>
                <th scope="col">Time</th>
                {props.showKey && <th scope="col">Key</th>}
                <th scope="col">Status</th>
                <th scope="col">Outcome</th>
                <th scope="col">Reason</th>
                <th scope="col">Model</th>
                <th scope="col" class="num">
                  Tokens
                </th>
                <th scope="col" class="num">
                  Cost
                </th>
                <th scope="col" class="num">
                  Latency
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.data.items.map((r) => (
                <tr key={r.id}>
                  <td>
                    <time dateTime={r.time} title={fullTime(r.time)}>
                      {clock(r.time)}
                    </time>
                  </td>
                  {props.showKey && <td>{r.keyId ? <a href={href.key(r.keyId)}>{r.keyId}</a> : '—'}</td>}
                  <td>{r.status}</td>
                  <td>
                    <Badge tone={outcomeTone(r.outcome)}>{r.outcome.replace(/_/g, ' ')}</Badge>
                  </td>
                  <td>{r.reason ?? '—'}</td>
                  <td>{r.model ?? '—'}</td>
                  <td class="num">{count(r.tokens)}</td>
                  <td class="num">{usd(r.usd)}</td>
                  <td class="num">{millis(r.latencyMs)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </Section>
  )
}
