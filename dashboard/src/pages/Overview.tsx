/** Who is spending what and who is refused by which limit: the last hour or day at a glance. */
import { useState } from 'preact/hooks'
import { ApiError, get } from '../api'
import { count, duration, millis, percent, usd } from '../format'
import { usePoll } from '../live'
import { href } from '../router'
import { useFeed } from '../stream'
import type { Latency, Status, UsageReport, UsageTotals } from '../types'
import { Badge, Bar, ErrorNote, Loading, PageTitle, Section, Stat, TableWrap, Toggle } from '../ui/common'
import { EventList } from '../ui/events'
import { RANGE_QUERY, RANGES, type Range, UsagePlots, useSeries } from '../ui/usage'
import { useKeyNames } from './names'

function Top(props: {
  title: string
  rows: UsageTotals[] | undefined
  kind: 'key' | 'team'
  names?: Map<string, string>
}) {
  return (
    <Section title={props.title}>
      {props.rows === undefined ? (
        <Loading />
      ) : props.rows.length === 0 ? (
        <p class="muted">No spend in this range.</p>
      ) : (
        <TableWrap label={props.title}>
          <table>
            <thead>
              <tr>
                <th scope="col">{props.kind === 'key' ? 'Key' : 'Team'}</th>
                <th scope="col" class="num">
                  Requests
                </th>
                <th scope="col" class="num">
                  Tokens
                </th>
                <th scope="col" class="num">
                  Spend
                </th>
              </tr>
            </thead>
            <tbody>
              {props.rows.map((r) => {
                const id = r.group === null ? null : String(r.group)
                const name = id === null ? undefined : props.names?.get(id)
                return (
                  <tr key={String(r.group)}>
                    <td>
                      {id === null ? (
                        <span class="muted">{props.kind === 'key' ? '(no key)' : '(no team)'}</span>
                      ) : (
                        <a href={props.kind === 'key' ? href.key(id) : href.team(id)}>{name ?? id}</a>
                      )}
                    </td>
                    <td class="num">{count(r.requests)}</td>
                    <td class="num">{count(r.tokens)}</td>
                    <td class="num">{usd(r.usd)}</td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        </TableWrap>
      )}
    </Section>
  )
}

function StoreState(props: { status: Status | undefined; error: unknown }) {
  const s = props.status
  if (s === undefined) return props.error ? <ErrorNote error={props.error} what="Status" /> : <Loading />
  const store = s.store
  const inner = (store?.store ?? null) as Record<string, unknown> | string | null
  const state = typeof inner === 'object' && inner !== null ? String(inner.state ?? '') : ''
  const status = typeof store?.status === 'string' ? store.status : undefined
  const failModes = store?.failModes as Record<string, string> | undefined
  const db = s.database
  return (
    <dl class="facts">
      <dt>Limiter store</dt>
      <dd>
        {store === null ? (
          <span class="muted">not reported by this server</span>
        ) : (
          <>
            {status && (
              <Badge tone={status === 'ready' ? 'ok' : status === 'degraded' ? 'warn' : 'bad'}>
                {status}
              </Badge>
            )}{' '}
            {typeof inner === 'string'
              ? inner
              : state === 'down'
                ? 'Redis down: breaker open'
                : state === 'up'
                  ? 'Redis up'
                  : ''}
            {typeof inner === 'object' && inner?.lastError ? (
              <span class="muted"> ({String(inner.lastError)})</span>
            ) : null}
          </>
        )}
      </dd>
      {failModes && (
        <>
          <dt>Fail modes in force</dt>
          <dd>
            {Object.entries(failModes)
              .map(([tier, mode]) => `${tier}: ${mode}`)
              .join(', ')}
          </dd>
        </>
      )}
      <dt>Database</dt>
      <dd>
        <Badge tone={db.reachable ? 'ok' : 'bad'}>{db.reachable ? 'reachable' : 'unreachable'}</Badge>{' '}
        {db.dialect}
        {db.latencyMs !== null && `, ${millis(db.latencyMs)}`}
        {db.error && <span class="muted"> ({db.error})</span>}
      </dd>
      <dt>Ledger writer</dt>
      <dd>
        <Badge tone={db.ledger.state === 'up' ? 'ok' : 'warn'}>{db.ledger.state}</Badge>{' '}
        {count(db.ledger.written)} written, {count(db.ledger.buffered)} waiting, {count(db.ledger.dropped)}{' '}
        dropped
      </dd>
      <dt>Version</dt>
      <dd>sluice {s.version}</dd>
    </dl>
  )
}

const NOTHING: UsageTotals = { group: null, requests: 0, served: 0, refused: 0, failed: 0, tokens: 0, usd: 0 }

export function Overview() {
  const [range, setRange] = useState<Range>('hour')
  const from = () => Date.now() - RANGE_QUERY[range].ms
  const series = useSeries(range, {})
  const totals = usePoll((signal) => get<UsageReport>('usage', { from: from() }, signal), [range])
  const byLimit = usePoll(
    (signal) =>
      get<UsageReport>(
        'usage',
        { from: from(), status: 429, groupBy: 'reason', sort: 'requests', limit: 10 },
        signal,
      ),
    [range],
  )
  const topKeys = usePoll(
    (signal) => get<UsageReport>('usage', { from: from(), groupBy: 'key', sort: 'usd', limit: 5 }, signal),
    [range],
  )
  const topTeams = usePoll(
    (signal) => get<UsageReport>('usage', { from: from(), groupBy: 'team', sort: 'usd', limit: 5 }, signal),
    [range],
  )
  const latency = usePoll(
    (signal) =>
      get<Latency>('latency', undefined, signal).catch((e) =>
        e instanceof ApiError && e.status === 501 ? null : Promise.reject(e),
      ),
    [],
  )
  const status = usePoll((signal) => get<Status>('status', undefined, signal), [])
  const feed = useFeed()
  const names = useKeyNames(
    (topKeys.data?.items ?? []).map((r) => r.group).filter((g): g is string => typeof g === 'string'),
  )

  // No row in the range: the API answers no total at all, which is zero of everything.
  const t = totals.data === undefined ? undefined : (totals.data.items[0] ?? NOTHING)
  const refusals = byLimit.data?.items ?? []
  const limited = refusals.reduce((a, r) => a + r.requests, 0)
  const lat = latency.data
  return (
    <>
      <div class="page-head">
        <PageTitle text="Overview">Overview</PageTitle>
        <Toggle label="Time range" value={range} options={RANGES} onChange={setRange} />
      </div>
      <div class="stats" aria-live="off">
        <Stat
          label="Requests"
          value={t ? count(t.requests) : '…'}
          detail={t ? `${count(t.served)} served` : undefined}
        />
        <Stat
          label="Refused"
          value={t ? count(t.refused) : '…'}
          detail={t && t.requests > 0 ? `${percent(limited / t.requests)} answered 429` : undefined}
          tone={t && t.refused > 0 ? 'warn' : undefined}
        />
        <Stat label="Tokens" value={t ? count(t.tokens) : '…'} />
        <Stat label="Spend" value={t ? usd(t.usd) : '…'} />
        <Stat
          label="Added latency p50 / p99"
          value={lat ? `${millis(lat.p50Ms)} / ${millis(lat.p99Ms)}` : lat === null ? 'not measured' : '…'}
          detail={lat ? `${count(lat.count)} calls, last ${duration(lat.windowMs)}` : undefined}
        />
      </div>
      <ErrorNote error={totals.error} what="Usage" />
      <Section title="Usage">
        <UsagePlots series={series.data} range={range} error={series.error} />
      </Section>
      <div class="grid-2">
        <Section title="429s by limit">
          {byLimit.data === undefined ? (
            <Loading />
          ) : refusals.length === 0 ? (
            <p class="muted">No 429 in this range.</p>
          ) : (
            <div class="bars">
              {refusals.map((r) => (
                <Bar
                  key={String(r.group)}
                  mode="share"
                  label={r.group === null ? '(no reason recorded)' : String(r.group)}
                  value={r.requests}
                  max={limited}
                  text={`${count(r.requests)} (${percent(r.requests / limited)})`}
                />
              ))}
            </div>
          )}
        </Section>
        <Section title="Store and database">
          <StoreState status={status.data} error={status.error} />
        </Section>
        <Top title="Top keys by spend" rows={topKeys.data?.items} kind="key" names={names} />
        <Top title="Top teams by spend" rows={topTeams.data?.items} kind="team" />
      </div>
      <Section title="Latest alerts" actions={<a href={href.alerts()}>All alerts</a>}>
        <EventList
          events={feed.events.slice(0, 5)}
          all={feed.events}
          empty={feed.state === 'unavailable' ? 'This server has no events feed.' : 'No alerts yet.'}
        />
      </Section>
    </>
  )
}
