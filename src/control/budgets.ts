import { CALENDAR_PERIODS, type CalendarPeriod } from '../core/period.js'
import { ControlInputError } from './errors.js'

/** A spending cap over a calendar period (see src/core/period.ts). */
export interface BudgetLimit {
  /** USD (any positive amount) or tokens (a whole number). */
  limit: number
  period: CalendarPeriod
}

/** Budgets of a key, a team or an end user: dollars, tokens, or both. */
export interface Budgets {
  usd?: BudgetLimit
  tokens?: BudgetLimit
}

const UNITS = ['usd', 'tokens'] as const

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Checks a budgets object, naming the bad field, and returns it normalised (only known fields).
 * undefined (not given) and null (clear) pass through.
 */
export function validateBudgets(value: unknown, field = 'budgets'): Budgets | null | undefined {
  if (value === undefined || value === null) return value
  if (!isObject(value))
    throw new ControlInputError(field, 'must be an object like { usd: { limit, period } }', value)
  const budgets: Budgets = {}
  for (const [unit, budget] of Object.entries(value)) {
    if (!(UNITS as readonly string[]).includes(unit)) {
      throw new ControlInputError(`${field}.${unit.slice(0, 64)}`, 'is not a budget unit (usd or tokens)')
    }
    if (budget === undefined || budget === null) continue
    const at = `${field}.${unit}`
    if (!isObject(budget)) throw new ControlInputError(at, 'must be an object { limit, period }', budget)
    for (const key of Object.keys(budget)) {
      if (key !== 'limit' && key !== 'period')
        throw new ControlInputError(`${at}.${key.slice(0, 64)}`, 'is not a budget field (limit, period)')
    }
    const { limit, period } = budget
    if (typeof limit !== 'number' || !Number.isFinite(limit) || limit <= 0) {
      throw new ControlInputError(`${at}.limit`, 'must be a positive finite number', limit)
    }
    if (unit === 'tokens' && !Number.isSafeInteger(limit)) {
      throw new ControlInputError(`${at}.limit`, 'must be a whole number of tokens', limit)
    }
    if (typeof period !== 'string' || !(CALENDAR_PERIODS as readonly string[]).includes(period)) {
      throw new ControlInputError(`${at}.period`, 'must be one of day, week, month', period)
    }
    budgets[unit as (typeof UNITS)[number]] = { limit, period: period as CalendarPeriod }
  }
  return budgets
}

export function budgetsText(value: unknown, field = 'budgets'): string | null | undefined {
  const budgets = validateBudgets(value, field)
  return budgets === undefined || budgets === null ? budgets : JSON.stringify(budgets)
}
