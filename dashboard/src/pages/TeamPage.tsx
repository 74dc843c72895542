/** One team: its budgets, usage, keys, recent requests and its keys' alerts; change or delete it. */
import { useState } from 'preact/hooks'
import { ApiError, del, get, seg } from '../api'
import { ago, fullTime } from '../format'
import { usePoll } from '../live'
import { href, navigate } from '../router'
import { useFeed } from '../stream'
import type { Key, Page, Team } from '../types'
import { Badge, ErrorNote, Loading, PageTitle, Section, TableWrap, Toggle } from '../ui/common'
import { Confirm } from '../ui/Dialog'
import { EventList } from '../ui/events'
import { TeamForm } from '../ui/forms'
import { BudgetBars } from '../ui/limits'
import { LedgerRows, RANGES, type Range, UsagePlots, useSeries } from '../ui/usage'
import { STATUS_TONE, spendFor } from './Keys'

export function TeamPage(props: { id: string }) {
  const [range, setRange] = useState<Range>('hour')
  const [dialog, setDialog] = useState<'edit' | 'delete' | undefined>(undefined)
  const team = usePoll(
    async (signal) => {
      const t = await get<Team>(`teams/${seg(props.id)}`, undefined, signal)
      const [keys, spend] = await Promise.all([
        get<Page<Key>>('keys', { team: props.id, limit: 1000, sort: 'name', order: 'asc' }, signal),
        spendFor('team', [t], signal),
      ])
      return { team: t, keys: keys.items, spend }
    },
    [props.id],
  )
  const series = useSeries(range, { team: props.id })
  const feed = useFeed()
  if (team.data === undefined) {
    const missing = team.error instanceof ApiError && team.error.status === 404
    return (
      <>
        <PageTitle text="Team">{missing ? 'No such team' : 'Team'}</PageTitle>
        {missing ? (
          <p>
            There is no team <span class="mono">{props.id}</span>. <a href={href.teams()}>All teams</a>
          </p>
        ) : team.error ? (
          <ErrorNote error={team.error} what="Team" />
        ) : (
          <Loading what="the team" />
        )}
      </>
    )
  }
  const { team: t, keys, spend } = team.data
  const subjects = new Set(keys.map((k) => `key:${k.id}`))
  const events = feed.events.filter((e) => e.subject !== null && subjects.has(e.subject))
  return (
    <>
      <div class="page-head">
        <div>
          <PageTitle text={`Team ${t.name}`}>{t.name}</PageTitle>
          <p class="mono muted">{t.id}</p>
        </div>
        <div class="buttons">
          <button type="button" onClick={() => setDialog('edit')}>
            Edit
          </button>
          <button type="button" class="danger" onClick={() => setDialog('delete')}>
            Delete
          </button>
        </div>
      </div>
      <div class="grid-2">
        <Section title="Budgets">
          <BudgetBars budgets={t.budgets} spend={spend} id={t.id} />
          <p class="small muted">
            Limit overrides: {t.limits ? <code>{JSON.stringify(t.limits)}</code> : 'none'} · created{' '}
            <span title={fullTime(t.createdAt)}>{ago(t.createdAt)}</span>
          </p>
        </Section>
        <Section title={`Keys (${keys.length})`}>
          {keys.length === 0 ? (
            <p class="muted">No key belongs to this team.</p>
          ) : (
            <TableWrap label="Keys of the team">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Key</th>
                    <th scope="col">Tier</th>
                    <th scope="col">Status</th>
                    <th scope="col">Last used</th>
                  </tr>
                </thead>
                <tbody>
                  {keys.map((k) => (
                    <tr key={k.id}>
                      <td>
                        <a href={href.key(k.id)}>{k.name}</a>
                      </td>
                      <td>{k.tier}</td>
                      <td>
                        <Badge tone={STATUS_TONE[k.status]}>{k.status}</Badge>
                      </td>
                      <td>{k.lastUsedAt ? ago(k.lastUsedAt) : 'never'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )}
        </Section>
      </div>
      <Section
        title="Usage"
        actions={<Toggle label="Time range" value={range} options={RANGES} onChange={setRange} />}
      >
        <UsagePlots series={series.data} range={range} error={series.error} />
      </Section>
      <LedgerRows filter={{ team: t.id }} showKey />
      <Section title="Alerts about its keys">
        <EventList events={events} all={feed.events} empty="No alert about this team's keys." />
      </Section>
      {dialog === 'edit' && (
        <TeamForm
          existing={t}
          onClose={() => setDialog(undefined)}
          onSaved={() => {
            setDialog(undefined)
            team.refresh()
          }}
        />
      )}
      {dialog === 'delete' && (
        <Confirm
          title={`Delete team ${t.name}`}
          action={
            keys.length > 0 ? `Delete and detach ${keys.length} key${keys.length === 1 ? '' : 's'}` : 'Delete'
          }
          danger
          onClose={() => setDialog(undefined)}
          onConfirm={async () => {
            await del(`teams/${seg(t.id)}`, keys.length > 0 ? { force: 'true' } : undefined)
            navigate(href.teams())
          }}
        >
          <p>
            {keys.length > 0
              ? `Its ${keys.length} key${keys.length === 1 ? ' keeps' : 's keep'} working, without a team (and without the team's budgets).`
              : 'The team has no keys.'}
          </p>
        </Confirm>
      )}
    </>
  )
}
