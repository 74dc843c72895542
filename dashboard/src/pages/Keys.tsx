/** Every key: search, sort, filter; live limits and this period's budget as bars; create one. */
import { useState } from 'preact/hooks'
import { ApiError, call, get } from '../api'
import { ago, fullTime } from '../format'
import { usePoll } from '../live'
import { href, navigate } from '../router'
import type { IssuedKey, Key, Page, Spend, Status, SubjectState, Team } from '../types'
import { Badge, ErrorNote, Loading, Pager, PageTitle, TableWrap } from '../ui/common'
import { Select } from '../ui/fields'
import { KeyForm } from '../ui/forms'
import { BudgetBars, LimitBars, periodsOf } from '../ui/limits'
import { SecretDialog } from '../ui/Secret'
import { rememberKey } from './names'

const PAGE = 25
type Sort = 'created' | 'name' | 'lastUsed' | 'expires'

export const STATUS_TONE = { active: 'ok', revoked: 'bad', expired: 'muted' } as const

/** Live limits of many subjects at once; null when this server cannot read them (no limiter). */
export async function inspectMany(
  subjects: string[],
  signal?: AbortSignal,
): Promise<Map<string, SubjectState> | null> {
  if (subjects.length === 0) return new Map()
  try {
    const answer = await call<{ items: SubjectState[] }>('POST', 'subjects/inspect', {
      body: { subjects },
      signal,
    })
    return new Map(answer.items.map((s) => [s.subject, s]))
  } catch (e) {
    if (e instanceof ApiError && e.status === 501) return null
    throw e
  }
}

/** This period's spend for each period the records' budgets use. */
export async function spendFor(
  scope: 'key' | 'team',
  records: { id: string; budgets: Key['budgets'] }[],
  signal?: AbortSignal,
): Promise<Partial<Record<string, Spend>>> {
  const out: Partial<Record<string, Spend>> = {}
  const withBudgets = records.filter((r) => r.budgets !== null)
  await Promise.all(
    periodsOf(withBudgets).map(async (period) => {
      out[period] = await get<Spend>('spend', { scope, period, id: withBudgets.map((r) => r.id) }, signal)
    }),
  )
  return out
}

function SortHeader(props: {
  label: string
  field: Sort
  sort: Sort
  order: 'asc' | 'desc'
  onSort: (f: Sort) => void
}) {
  const active = props.sort === props.field
  return (
    <th scope="col" aria-sort={active ? (props.order === 'asc' ? 'ascending' : 'descending') : 'none'}>
      <button type="button" class="sort" onClick={() => props.onSort(props.field)}>
        {props.label}
        <span aria-hidden="true">{active ? (props.order === 'asc' ? ' ▲' : ' ▼') : ''}</span>
      </button>
    </th>
  )
}

export function Keys() {
  const [search, setSearch] = useState('')
  const [status, setStatus] = useState('active')
  const [sort, setSort] = useState<Sort>('created')
  const [order, setOrder] = useState<'asc' | 'desc'>('desc')
  const [offset, setOffset] = useState(0)
  const [creating, setCreating] = useState(false)
  const [issued, setIssued] = useState<IssuedKey | undefined>(undefined)

  const list = usePoll(
    async (signal) => {
      const page = await get<Page<Key>>(
        'keys',
        { search, status: status || undefined, sort, order, limit: PAGE, offset },
        signal,
      )
      for (const k of page.items) rememberKey(k)
      const [live, spend] = await Promise.all([
        inspectMany(
          page.items.map((k) => `key:${k.id}`),
          signal,
        ),
        spendFor('key', page.items, signal),
      ])
      return { page, live, spend }
    },
    [search, status, sort, order, offset],
  )
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
  const onSort = (field: Sort) => {
    if (field === sort) setOrder(order === 'asc' ? 'desc' : 'asc')
    else {
      setSort(field)
      setOrder(field === 'name' ? 'asc' : 'desc')
    }
    setOffset(0)
  }
  const data = list.data
  return (
    <>
      <div class="page-head">
        <PageTitle text="Keys">Keys</PageTitle>
        <button
          type="button"
          class="primary"
          onClick={() => setCreating(true)}
          disabled={meta.data === undefined}
        >
          Create key
        </button>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="key-search">Search keys</label>
          <input
            id="key-search"
            type="search"
            value={search}
            placeholder="Name or id"
            onInput={(e) => {
              setSearch(e.currentTarget.value)
              setOffset(0)
            }}
          />
        </div>
        <Select
          label="Status"
          value={status}
          onChange={(v) => {
            setStatus(v)
            setOffset(0)
          }}
          options={[
            { value: '', text: 'Any' },
            { value: 'active', text: 'Active' },
            { value: 'revoked', text: 'Revoked' },
            { value: 'expired', text: 'Expired' },
          ]}
        />
      </form>
      <ErrorNote error={list.error} what="Keys" />
      {data === undefined ? (
        <Loading what="keys" />
      ) : data.page.items.length === 0 ? (
        <p class="muted">No key matches.</p>
      ) : (
        <>
          {data.live === null && (
            <p class="muted">Live limits need the gateway's limiter: this server cannot read them.</p>
          )}
          <TableWrap label="Keys">
            <table class="keys">
              <thead>
                <tr>
                  <SortHeader label="Name" field="name" sort={sort} order={order} onSort={onSort} />
                  <th scope="col">Tier and team</th>
                  <th scope="col">Status</th>
                  <th scope="col">Left now</th>
                  <th scope="col">Budget this period</th>
                  <SortHeader label="Last used" field="lastUsed" sort={sort} order={order} onSort={onSort} />
                  <SortHeader label="Created" field="created" sort={sort} order={order} onSort={onSort} />
                </tr>
              </thead>
              <tbody>
                {data.page.items.map((k) => {
                  const live = data.live?.get(`key:${k.id}`)
                  const blocked = live?.tiers.some((t) => t.blocked)
                  return (
                    <tr key={k.id}>
                      <td>
                        <a href={href.key(k.id)}>{k.name}</a>
                        <div class="mono muted small">{k.id}</div>
                      </td>
                      <td>
                        {k.tier}
                        {k.team && (
                          <div class="small">
                            <a href={href.team(k.team)}>{k.team}</a>
                          </div>
                        )}
                      </td>
                      <td>
                        <Badge tone={STATUS_TONE[k.status]}>{k.status}</Badge>
                        {blocked && <Badge tone="bad">blocked</Badge>}
                        {k.readOnly && <Badge tone="muted">sluice.yaml</Badge>}
                      </td>
                      <td class="cell-bars">{live ? <LimitBars tiers={live.tiers} compact /> : '—'}</td>
                      <td class="cell-bars">
                        <BudgetBars budgets={k.budgets} spend={data.spend} id={k.id} />
                      </td>
                      <td title={fullTime(k.lastUsedAt)}>{k.lastUsedAt ? ago(k.lastUsedAt) : 'never'}</td>
                      <td title={fullTime(k.createdAt)}>{ago(k.createdAt)}</td>
                    </tr>
                  )
                })}
              </tbody>
            </table>
          </TableWrap>
          <Pager
            label="Pages of keys"
            offset={offset}
            size={PAGE}
            total={data.page.total}
            onOffset={setOffset}
          />
        </>
      )}
      {creating && meta.data && (
        <KeyForm
          tiers={meta.data.tiers}
          teams={meta.data.teams}
          onClose={() => setCreating(false)}
          onSaved={(k) => {
            setCreating(false)
            setIssued(k as IssuedKey)
            list.refresh()
          }}
        />
      )}
      {issued && (
        <SecretDialog
          title={`Key ${issued.name} created`}
          secret={issued.key}
          onClose={() => {
            const id = issued.id
            setIssued(undefined)
            navigate(href.key(id))
          }}
        />
      )}
    </>
  )
}
