/** Form fields shared by the key and team forms: labelled inputs, budgets, limit overrides. */
import { useId } from 'preact/hooks'
import type { Budgets, LimitOverrides } from '../types'

export function Field(props: {
  label: string
  value: string
  onInput: (value: string) => void
  type?: 'text' | 'number' | 'datetime-local' | 'search' | 'password'
  required?: boolean
  hint?: string
  error?: string
  placeholder?: string
  min?: string
  step?: string
}) {
  const id = useId()
  const hint = props.hint ? `${id}-hint` : undefined
  const error = props.error ? `${id}-error` : undefined
  return (
    <div class="field">
      <label for={id}>
        {props.label}
        {props.required ? ' (required)' : ''}
      </label>
      <input
        id={id}
        // One of several input kinds; Preact's types want a single literal here.
        type={(props.type ?? 'text') as 'text'}
        value={props.value}
        required={props.required}
        placeholder={props.placeholder}
        min={props.min}
        step={props.step}
        aria-invalid={props.error ? true : undefined}
        aria-describedby={[hint, error].filter(Boolean).join(' ') || undefined}
        onInput={(e) => props.onInput(e.currentTarget.value)}
      />
      {props.hint && (
        <p class="hint" id={hint}>
          {props.hint}
        </p>
      )}
      {props.error && (
        <p class="field-error" id={error}>
          {props.error}
        </p>
      )}
    </div>
  )
}

export function Select(props: {
  label: string
  value: string
  onChange: (value: string) => void
  options: { value: string; text: string }[]
  error?: string
}) {
  const id = useId()
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <select
        id={id}
        value={props.value}
        aria-invalid={props.error ? true : undefined}
        onChange={(e) => props.onChange(e.currentTarget.value)}
      >
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.text}
          </option>
        ))}
      </select>
      {props.error && <p class="field-error">{props.error}</p>}
    </div>
  )
}

const PERIODS = [
  { value: 'day', text: 'per day' },
  { value: 'week', text: 'per week' },
  { value: 'month', text: 'per month' },
]

/** Budget inputs as text (what the user typed), turned into the API's object on submit. */
export interface BudgetDraft {
  usd: string
  usdPeriod: string
  tokens: string
  tokensPeriod: string
}

export function budgetDraft(budgets: Budgets | null | undefined): BudgetDraft {
  return {
    usd: budgets?.usd ? String(budgets.usd.limit) : '',
    usdPeriod: budgets?.usd?.period ?? 'month',
    tokens: budgets?.tokens ? String(budgets.tokens.limit) : '',
    tokensPeriod: budgets?.tokens?.period ?? 'month',
  }
}

/** The budgets to send; null when none is set. Numbers the API refuses are sent as typed, to be named by it. */
export function budgetsOf(d: BudgetDraft): Budgets | null {
  const out: Record<string, unknown> = {}
  if (d.usd.trim() !== '') out.usd = { limit: Number(d.usd), period: d.usdPeriod }
  if (d.tokens.trim() !== '') out.tokens = { limit: Number(d.tokens), period: d.tokensPeriod }
  return Object.keys(out).length === 0 ? null : (out as Budgets)
}

export function BudgetFields(props: {
  draft: BudgetDraft
  onChange: (d: BudgetDraft) => void
  error?: (f: string) => string | undefined
}) {
  const { draft, onChange } = props
  return (
    <fieldset>
      <legend>Budgets (optional)</legend>
      <div class="row">
        <Field
          label="Dollar budget (USD)"
          type="number"
          min="0"
          step="any"
          value={draft.usd}
          onInput={(usd) => onChange({ ...draft, usd })}
          error={props.error?.('budgets.usd')}
        />
        <Select
          label="Dollar budget period"
          value={draft.usdPeriod}
          options={PERIODS}
          onChange={(usdPeriod) => onChange({ ...draft, usdPeriod })}
        />
      </div>
      <div class="row">
        <Field
          label="Token budget"
          type="number"
          min="0"
          step="1"
          value={draft.tokens}
          onInput={(tokens) => onChange({ ...draft, tokens })}
          error={props.error?.('budgets.tokens')}
        />
        <Select
          label="Token budget period"
          value={draft.tokensPeriod}
          options={PERIODS}
          onChange={(tokensPeriod) => onChange({ ...draft, tokensPeriod })}
        />
      </div>
    </fieldset>
  )
}

export const LIMITS_EXAMPLE =
  '{ "tokens": { "kind": "tokenBucket", "unit": "tokens", "capacity": 200000, "per": "1h" } }'

/** Limit overrides as JSON text; returns the parsed object, null for none, or an error message. */
export function limitsOf(text: string): { value: LimitOverrides | null } | { error: string } {
  if (text.trim() === '') return { value: null }
  try {
    const value = JSON.parse(text) as unknown
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { error: 'must be a JSON object of named limits' }
    }
    return { value: value as LimitOverrides }
  } catch {
    return { error: 'is not valid JSON' }
  }
}

export function LimitsField(props: { value: string; onInput: (v: string) => void; error?: string }) {
  const id = useId()
  return (
    <div class="field">
      <label for={id}>Limit overrides (JSON, optional)</label>
      <textarea
        id={id}
        rows={4}
        class="mono"
        value={props.value}
        placeholder={LIMITS_EXAMPLE}
        spellcheck={false}
        aria-invalid={props.error ? true : undefined}
        aria-describedby={`${id}-hint${props.error ? ` ${id}-error` : ''}`}
        onInput={(e) => props.onInput(e.currentTarget.value)}
      />
      <p class="hint" id={`${id}-hint`}>
        As under a tier's <code>limits</code> in sluice.yaml; <code>null</code> removes one of the tier's
        limits.
      </p>
      {props.error && (
        <p class="field-error" id={`${id}-error`}>
          {props.error}
        </p>
      )}
    </div>
  )
}
