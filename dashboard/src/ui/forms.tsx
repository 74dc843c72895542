/** Creating and changing keys and teams. Errors the API names (`param`) are shown beside their field. */
import { useState } from 'preact/hooks'
import { patch, post, seg } from '../api'
import type { IssuedKey, Key, Team } from '../types'
import { ErrorNote } from './common'
import { Dialog, errorFor } from './Dialog'
import { BudgetFields, budgetDraft, budgetsOf, Field, LimitsField, limitsOf, Select } from './fields'

/** `2026-12-01T10:00` (datetime-local, the browser's zone) ↔ ISO. */
const toLocalInput = (iso: string | null) => {
  if (!iso) return ''
  const d = new Date(iso)
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16)
}
const fromLocalInput = (value: string) => (value === '' ? null : new Date(value).toISOString())

export function KeyForm(props: {
  existing?: Key
  tiers: string[] | null
  teams: Team[]
  onClose: () => void
  onSaved: (key: Key | IssuedKey) => void
}) {
  const k = props.existing
  const [name, setName] = useState(k?.name ?? '')
  const [tier, setTier] = useState(k?.tier ?? props.tiers?.[props.tiers.length - 1] ?? '')
  const [team, setTeam] = useState(k?.team ?? '')
  const [user, setUser] = useState(k?.user ?? '')
  const [expires, setExpires] = useState(toLocalInput(k?.expiresAt ?? null))
  const [budgets, setBudgets] = useState(budgetDraft(k?.budgets))
  const [limits, setLimits] = useState(k?.limits ? JSON.stringify(k.limits, null, 2) : '')
  const [error, setError] = useState<unknown>(undefined)
  const [limitsError, setLimitsError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)

  const submit = async (e: Event) => {
    e.preventDefault()
    const parsedLimits = limitsOf(limits)
    if ('error' in parsedLimits) {
      setLimitsError(`Limit overrides ${parsedLimits.error}`)
      return
    }
    setLimitsError(undefined)
    setBusy(true)
    setError(undefined)
    const body: Record<string, unknown> = {
      name,
      tier,
      team: team === '' ? null : team,
      user: user.trim() === '' ? null : user.trim(),
      expiresAt: fromLocalInput(expires),
      budgets: budgetsOf(budgets),
      limits: parsedLimits.value,
    }
    if (k === undefined) for (const f of Object.keys(body)) if (body[f] === null) delete body[f]
    try {
      const saved =
        k === undefined ? await post<IssuedKey>('keys', body) : await patch<Key>(`keys/${seg(k.id)}`, body)
      props.onSaved(saved)
    } catch (err) {
      setError(err)
      setBusy(false)
    }
  }
  const named = (...fields: string[]) => errorFor(error, ...fields)
  return (
    <Dialog title={k ? `Edit key ${k.name}` : 'Create a key'} onClose={props.onClose} wide>
      <form onSubmit={submit} noValidate>
        <Field
          label="Name"
          required
          value={name}
          onInput={setName}
          error={named('name')}
          hint="What the key is for, e.g. ci-bot."
        />
        <div class="row">
          {props.tiers ? (
            <Select
              label="Tier"
              value={tier}
              onChange={setTier}
              options={props.tiers.map((t) => ({ value: t, text: t }))}
              error={named('tier')}
            />
          ) : (
            <Field label="Tier" required value={tier} onInput={setTier} error={named('tier')} />
          )}
          <Select
            label="Team"
            value={team}
            onChange={setTeam}
            options={[
              { value: '', text: '(no team)' },
              ...props.teams.map((t) => ({ value: t.id, text: `${t.name} (${t.id})` })),
            ]}
            error={named('team')}
          />
        </div>
        <div class="row">
          <Field
            label="End user"
            value={user}
            onInput={setUser}
            error={named('user')}
            hint="For tiers counted per user."
          />
          <Field
            label="Expires"
            type="datetime-local"
            value={expires}
            onInput={setExpires}
            error={named('expiresAt')}
          />
        </div>
        <BudgetFields draft={budgets} onChange={setBudgets} error={(f) => named(f)} />
        <LimitsField value={limits} onInput={setLimits} error={limitsError ?? named('limits')} />
        <ErrorNote error={error} what="Not saved" />
        <div class="actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {k ? 'Save changes' : 'Create key'}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

export function TeamForm(props: { existing?: Team; onClose: () => void; onSaved: (team: Team) => void }) {
  const t = props.existing
  const [id, setId] = useState(t?.id ?? '')
  const [name, setName] = useState(t?.name ?? '')
  const [budgets, setBudgets] = useState(budgetDraft(t?.budgets))
  const [limits, setLimits] = useState(t?.limits ? JSON.stringify(t.limits, null, 2) : '')
  const [error, setError] = useState<unknown>(undefined)
  const [limitsError, setLimitsError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    const parsedLimits = limitsOf(limits)
    if ('error' in parsedLimits) {
      setLimitsError(`Limit overrides ${parsedLimits.error}`)
      return
    }
    setLimitsError(undefined)
    setBusy(true)
    setError(undefined)
    const body: Record<string, unknown> = {
      name: name.trim() === '' ? undefined : name,
      budgets: budgetsOf(budgets),
      limits: parsedLimits.value,
    }
    try {
      if (t === undefined) {
        const created = { id, ...body }
        for (const f of Object.keys(created)) {
          const v = (created as Record<string, unknown>)[f]
          if (v === null || v === undefined) delete (created as Record<string, unknown>)[f]
        }
        props.onSaved(await post<Team>('teams', created))
      } else props.onSaved(await patch<Team>(`teams/${seg(t.id)}`, body))
    } catch (err) {
      setError(err)
      setBusy(false)
    }
  }
  const named = (...fields: string[]) => errorFor(error, ...fields)
  return (
    <Dialog title={t ? `Edit team ${t.name}` : 'Create a team'} onClose={props.onClose} wide>
      <form onSubmit={submit} noValidate>
        {t === undefined && (
          <Field
            label="Team id"
            required
            value={id}
            onInput={setId}
            error={named('id')}
            hint="Lowercase letters, digits, ., _ or -: e.g. research."
          />
        )}
        <Field label="Name" value={name} onInput={setName} error={named('name')} />
        <BudgetFields draft={budgets} onChange={setBudgets} error={(f) => named(f)} />
        <LimitsField value={limits} onInput={setLimits} error={limitsError ?? named('limits')} />
        <ErrorNote error={error} what="Not saved" />
        <div class="actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {t ? 'Save changes' : 'Create team'}
          </button>
        </div>
      </form>
    </Dialog>
  )
}
