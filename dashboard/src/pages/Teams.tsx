/** Teams: search, sort by name or spend, this period's budgets; create one. */
import { useState } from 'preact/hooks'
import { get } from '../api'
import { count, usd } from '../format'
import { usePoll } from '../live'
import { href, navigate } from '../router'
import type { Page, Spend, Team } from '../types'
import { ErrorNote, Loading, PageTitle, TableWrap } from '../ui/common'
import { TeamForm } from '../ui/forms'
import { BudgetBars } from '../ui/limits'
import { spendFor } from './Keys'

type Sort = 'name' | 'spend'

export function Teams() {
  const [search, setSearch] = useState('')
  const [sort, setSort] = useState<Sort>('spend')
  const [creating, setCreating] = useState(false)
  const list = usePoll(
    async (signal) => {
      const page = await get<Page<Team>>('teams', { search, limit: 1000 }, signal)
      const [month, budgets] = await Promise.all([
        get<Spend>('spend', { scope: 'team', period: 'month', limit: 10_000 }, signal),
        spendFor('team', page.items, signal),
      ])
      return { page, month: new Map(month.items.map((i) => [i.id, i])), budgets }
    },
    [search],
  )
  const data = list.data
  const teams = data
    ? [...data.page.items].sort((a, b) =>
        sort === 'name'
          ? a.name.localeCompare(b.name)
          : (data.month.get(b.id)?.usd ?? 0) - (data.month.get(a.id)?.usd ?? 0) ||
            a.name.localeCompare(b.name),
      )
    : []
  return (
    <>
      <div class="page-head">
        <PageTitle text="Teams">Teams</PageTitle>
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          Create team
        </button>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="team-search">Search teams</label>
          <input
            id="team-search"
            type="search"
            value={search}
            placeholder="Name or id"
            onInput={(e) => setSearch(e.currentTarget.value)}
          />
        </div>
      </form>
      <ErrorNote error={list.error} what="Teams" />
      {data === undefined ? (
        <Loading what="teams" />
      ) : teams.length === 0 ? (
        <p class="muted">No team{search ? ' matches' : ' yet'}.</p>
      ) : (
        <TableWrap label="Teams">
          <table>
            <thead>
              <tr>
                <th scope="col" aria-sort={sort === 'name' ? 'ascending' : 'none'}>
                  <button type="button" class="sort" onClick={() => setSort('name')}>
                    Team
                  </button>
                </th>
                <th scope="col" class="num" aria-sort={sort === 'spend' ? 'descending' : 'none'}>
                  <button type="button" class="sort" onClick={() => setSort('spend')}>
                    Spend this month
                  </button>
                </th>
                <th scope="col" class="num">
                  Requests this month
                </th>
                <th scope="col">Budgets this period</th>
              </tr>
            </thead>
            <tbody>
              {teams.map((t) => (
                <tr key={t.id}>
                  <td>
                    <a href={href.team(t.id)}>{t.name}</a>
                    <div class="mono muted small">{t.id}</div>
                  </td>
                  <td class="num">{usd(data.month.get(t.id)?.usd ?? 0)}</td>
                  <td class="num">{count(data.month.get(t.id)?.requests ?? 0)}</td>
                  <td class="cell-bars">
                    <BudgetBars budgets={t.budgets} spend={data.budgets} id={t.id} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {creating && (
        <TeamForm
          onClose={() => setCreating(false)}
          onSaved={(t) => {
            setCreating(false)
            navigate(href.team(t.id))
          }}
        />
      )}
    </>
  )
}
