/** Live limits (how much of each is left now) and budgets (how much of this period is used). */
import { amount, count, duration, usd } from '../format'
import type { Budgets, Spend, TierState } from '../types'
import { Badge, Bar } from './common'

export function limitText(l: TierState['limits'][number]): string {
  const unit = l.unit === 'concurrent' ? 'in flight' : l.unit
  const left = `${amount(Math.max(0, l.remaining), l.unit)} of ${amount(l.limit, l.unit)} ${unit} left`
  const debt = l.remaining < 0 ? ` (${amount(-l.remaining, l.unit)} in debt)` : ''
  const full = l.resetMs > 0 ? `, full in ${duration(l.resetMs)}` : ''
  return left + debt + full
}

/** Every limit of every tier that counts the subject, as bars of what is left. */
export function LimitBars(props: { tiers: TierState[]; compact?: boolean }) {
  if (props.tiers.length === 0) return <p class="muted">No tier counts this subject.</p>
  return (
    <div class="bars">
      {props.tiers.map((t) => (
        <div key={t.tier} class="tier-bars">
          {!props.compact && (
            <p class="tier-line">
              Tier <strong>{t.tier}</strong>{' '}
              {t.blocked ? (
                <Badge tone="bad">blocked{t.retryAfterMs ? ` for ${duration(t.retryAfterMs)}` : ''}</Badge>
              ) : t.allowed ? (
                <Badge tone="ok">a call now would pass</Badge>
              ) : (
                <Badge tone="warn">refused by {t.deniedBy ?? 'a limit'}</Badge>
              )}
            </p>
          )}
          {t.limits.map((l) => (
            <Bar
              key={l.name}
              label={props.compact ? l.name : `${l.name} (${l.kind})`}
              value={Math.max(0, l.remaining)}
              max={l.limit}
              text={limitText(l)}
            />
          ))}
        </div>
      ))}
    </div>
  )
}

/** Each budget of a key or team against what was spent in its current period. */
export function BudgetBars(props: {
  budgets: Budgets | null
  spend: Partial<Record<string, Spend>>
  id: string
}) {
  const entries = Object.entries(props.budgets ?? {}).filter(([, b]) => b !== undefined)
  if (entries.length === 0) return <p class="muted">No budget.</p>
  return (
    <div class="bars">
      {entries.map(([unit, b]) => {
        const period = props.spend[b!.period]
        const row = period?.items.find((i) => i.id === props.id)
        const used = unit === 'usd' ? (row?.usd ?? 0) : (row?.tokens ?? 0)
        const fmt = unit === 'usd' ? usd : count
        const resets = period ? `, resets in ${duration(Date.parse(period.end) - Date.now())}` : ''
        return (
          <Bar
            key={unit}
            mode="used"
            label={`${unit === 'usd' ? 'Dollars' : 'Tokens'} this ${b!.period}`}
            value={used}
            max={b!.limit}
            text={
              period ? `${fmt(used)} of ${fmt(b!.limit)} used${resets}` : `${fmt(b!.limit)} a ${b!.period}`
            }
          />
        )
      })}
    </div>
  )
}

/** The periods the budgets of these records use (so that only those spends are read). */
export function periodsOf(records: { budgets: Budgets | null }[]): ('day' | 'week' | 'month')[] {
  const set = new Set<'day' | 'week' | 'month'>()
  for (const r of records) for (const b of Object.values(r.budgets ?? {})) if (b) set.add(b.period)
  return [...set]
}
