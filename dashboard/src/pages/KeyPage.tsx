/** One key: what it is, what is left now, its budgets, usage, recent requests and alerts; change it. */
import { useState } from 'preact/hooks'
import { ApiError, get, post, seg } from '../api'
import { ago, fullTime } from '../format'
import { usePoll } from '../live'
import { href } from '../router'
import { useFeed } from '../stream'
import type { IssuedKey, Key, Page, Status, Team } from '../types'
import { Badge, ErrorNote, Loading, PageTitle, Section, Toggle } from '../ui/common'
import { Confirm } from '../ui/Dialog'
import { EventList } from '../ui/events'
import { Select } from '../ui/fields'
import { KeyForm } from '../ui/forms'
import { BudgetBars, LimitBars } from '../ui/limits'
import { SecretDialog } from '../ui/Secret'
import { LedgerRows, RANGES, type Range, UsagePlots, useSeries } from '../ui/usage'
import { inspectMany, STATUS_TONE, spendFor } from './Keys'
import { rememberKey } from './names'

const GRACES = [
  { value: '0', text: 'At once' },
  { value: '15m', text: 'In 15 minutes' },
  { value: '1h', text: 'In 1 hour' },
  { value: '1d', text: 'In 1 day' },
  { value: '7d', text: 'In 7 days' },
]

type Dialogs = 'edit' | 'rotate' | 'revoke' | 'unblock' | undefined

export function KeyPage(props: { id: string }) {
  const subject = `key:${props.id}`
  const [range, setRange] = useState<Range>('hour')
  const [dialog, setDialog] = useState<Dialogs>(undefined)
  const [grace, setGrace] = useState('0')
  const [issued, setIssued] = useState<IssuedKey | undefined>(undefined)
  const key = usePoll(
    async (signal) => {
      const k = await get<Key>(`keys/${seg(props.id)}`, undefined, signal)
      rememberKey(k)
      const [live, spend] = await Promise.all([inspectMany([subject], signal), spendFor('key', [k], signal)])
      return { key: k, live: live === null ? null : (live.get(subject) ?? null), spend }
    },
    [props.id],
  )
  const series = useSeries(range, { key: props.id })
  const feed = useFeed()
  const meta = usePoll(
    async (signal) => {
      const [st, teams] = await Promise.all([
        get<Status>('status', undefined, signal),
        get<Page<Team>>('teams', { limit: 1000 }, signal),
      ])
      return { tiers: st.tiers, teams: teams.items }
    },
    [],
    60_000,
  )

  if (key.data === undefined) {
    const missing = key.error instanceof ApiError && key.error.status === 404
    return (
      <>
        <PageTitle text="Key">{missing ? 'No such key' : 'Key'}</PageTitle>
        {missing ? (
          <p>
            There is no key <span class="mono">{props.id}</span>. <a href={href.keys()}>All keys</a>
          </p>
        ) : key.error ? (
          <ErrorNote error={key.error} what="Key" />
        ) : (
          <Loading what="the key" />
        )}
      </>
    )
  }
  const { key: k, live, spend } = key.data
  const blocked = live?.tiers.some((t) => t.blocked) ?? false
  const events = feed.events.filter((e) => e.subject === subject)
  const close = () => setDialog(undefined)
  return (
    <>
      <div class="page-head">
        <div>
          <PageTitle text={`Key ${k.name}`}>
            {k.name} <Badge tone={STATUS_TONE[k.status]}>{k.status}</Badge>{' '}
            {blocked && <Badge tone="bad">blocked</Badge>}
          </PageTitle>
          <p class="mono muted">{k.id}</p>
        </div>
        <div class="buttons">
          {blocked && (
            <button type="button" class="primary" onClick={() => setDialog('unblock')}>
              Unblock
            </button>
          )}
          {!k.readOnly && (
            <>
              <button type="button" onClick={() => setDialog('edit')} disabled={meta.data === undefined}>
                Edit
              </button>
              <button type="button" onClick={() => setDialog('rotate')} disabled={k.status === 'revoked'}>
                Rotate
              </button>
              <button
                type="button"
                class="danger"
                onClick={() => setDialog('revoke')}
                disabled={k.status === 'revoked'}
              >
                Revoke
              </button>
            </>
          )}
        </div>
      </div>
      {k.readOnly && (
        <p class="muted">This key is managed in sluice.yaml: change it in the file and reload the gateway.</p>
      )}
      <ErrorNote error={key.error} what="Refresh" />
      <div class="grid-2">
        <Section title="Details">
          <dl class="facts">
            <dt>Tier</dt>
            <dd>{k.tier}</dd>
            <dt>Team</dt>
            <dd>{k.team ? <a href={href.team(k.team)}>{k.team}</a> : '—'}</dd>
            <dt>End user</dt>
            <dd>{k.user ?? '—'}</dd>
            <dt>Created</dt>
            <dd title={fullTime(k.createdAt)}>{ago(k.createdAt)}</dd>
            <dt>Last used</dt>
            <dd title={fullTime(k.lastUsedAt)}>{k.lastUsedAt ? ago(k.lastUsedAt) : 'never'}</dd>
            <dt>Expires</dt>
            <dd title={fullTime(k.expiresAt)}>{k.expiresAt ? ago(k.expiresAt) : 'never'}</dd>
            {k.previousSecretValidUntil && (
              <>
                <dt>Old secret works until</dt>
                <dd title={fullTime(k.previousSecretValidUntil)}>{ago(k.previousSecretValidUntil)}</dd>
              </>
            )}
            {k.revokedAt && (
              <>
                <dt>Revoked</dt>
                <dd title={fullTime(k.revokedAt)}>{ago(k.revokedAt)}</dd>
              </>
            )}
            <dt>Limit overrides</dt>
            <dd>
              {k.limits ? <code class="small">{JSON.stringify(k.limits)}</code> : 'none (the tier’s limits)'}
            </dd>
          </dl>
        </Section>
        <Section title="Left now">
          {live === null ? (
            <p class="muted">Live limits need the gateway's limiter: this server cannot read them.</p>
          ) : (
            <LimitBars tiers={live.tiers} />
          )}
          <h3>Budgets</h3>
          <BudgetBars budgets={k.budgets} spend={spend} id={k.id} />
        </Section>
      </div>
      <Section
        title="Usage"
        actions={<Toggle label="Time range" value={range} options={RANGES} onChange={setRange} />}
      >
        <UsagePlots series={series.data} range={range} error={series.error} />
      </Section>
      <LedgerRows filter={{ key: k.id }} />
      <Section title="Alerts" actions={<a href={href.alerts()}>All alerts</a>}>
        <EventList events={events} all={feed.events} empty="No alert about this key." />
      </Section>

      {dialog === 'edit' && meta.data && (
        <KeyForm
          existing={k}
          tiers={meta.data.tiers}
          teams={meta.data.teams}
          onClose={close}
          onSaved={() => {
            close()
            key.refresh()
          }}
        />
      )}
      {dialog === 'rotate' && (
        <Confirm
          title={`Rotate key ${k.name}`}
          action="Rotate"
          onClose={close}
          onConfirm={async () => {
            const rotated = await post<IssuedKey>(`keys/${seg(k.id)}/rotate`, grace === '0' ? {} : { grace })
            close()
            setIssued(rotated)
            key.refresh()
          }}
        >
          <p>A new secret is made and shown once. The current secret stops working:</p>
          <Select label="Old secret stops" value={grace} onChange={setGrace} options={GRACES} />
        </Confirm>
      )}
      {dialog === 'revoke' && (
        <Confirm
          title={`Revoke key ${k.name}`}
          action="Revoke"
          danger
          onClose={close}
          onConfirm={async () => {
            await post<Key>(`keys/${seg(k.id)}/revoke`)
            close()
            key.refresh()
          }}
        >
          <p>
            Calls with this key get 401 on every gateway within about a second. This cannot be undone: to let
            the client in again, create a new key.
          </p>
        </Confirm>
      )}
      {dialog === 'unblock' && (
        <Confirm
          title={`Unblock key ${k.name}`}
          action="Unblock"
          onClose={close}
          onConfirm={async () => {
            await post(`subjects/${seg(subject)}/unblock`)
            close()
            key.refresh()
          }}
        >
          <p>Lifts the block in every tier and forgets the strikes that led to it. Its limits still apply.</p>
        </Confirm>
      )}
      {issued && (
        <SecretDialog
          title={`New secret for ${issued.name}`}
          secret={issued.key}
          note={
            issued.previousSecretValidUntil
              ? `The old secret works until ${fullTime(issued.previousSecretValidUntil)}.`
              : 'The old secret no longer works.'
          }
          onClose={() => setIssued(undefined)}
        />
      )}
    </>
  )
}
